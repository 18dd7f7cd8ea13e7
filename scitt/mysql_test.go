package scitt_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// TestMySQL runs the service suite against a real MySQL/MariaDB server
// (make test-mysql starts one). Each environment gets a fresh database.
func TestMySQL(t *testing.T) {
	mk := mysqlEnv(t)
	t.Run("RegisterReceiptVerify", func(t *testing.T) { testRegisterReceiptVerify(t, mk) })
	t.Run("ReceiptVerificationFailures", func(t *testing.T) { testReceiptVerificationFailures(t, mk) })
	t.Run("Rejections", func(t *testing.T) { testRejections(t, mk) })
	t.Run("Restart", func(t *testing.T) { testRestart(t, mk) })
}

// mysqlEnv returns an envMaker giving each environment a fresh database on
// the server at VIGIL_TEST_MYSQL_DSN, or skips tb loudly without one.
func mysqlEnv(tb testing.TB) envMaker {
	dsn := os.Getenv("VIGIL_TEST_MYSQL_DSN")
	if dsn == "" {
		tb.Skip("SKIPPING MySQL tests: VIGIL_TEST_MYSQL_DSN is unset; run `make test-mysql` to run them against a private MariaDB")
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		tb.Fatalf("VIGIL_TEST_MYSQL_DSN: %v", err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { admin.Close() })
	return func(tb testing.TB) *testEnv {
		tb.Helper()
		e := newEnv(tb)
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		name := "vigil_test_" + hex.EncodeToString(b)
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			tb.Fatalf("creating database: %v", err)
		}
		tb.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE " + name) })
		c := cfg.Clone()
		c.DBName = name
		e.mysqlDSN = c.FormatDSN()
		return e
	}
}
