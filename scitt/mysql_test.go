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
	dsn := os.Getenv("VIGIL_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("SKIPPING MySQL tests: VIGIL_TEST_MYSQL_DSN is unset; run `make test-mysql` to run them against a private MariaDB")
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("VIGIL_TEST_MYSQL_DSN: %v", err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	mk := func(tb testing.TB) *testEnv {
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
	t.Run("RegisterReceiptVerify", func(t *testing.T) { testRegisterReceiptVerify(t, mk) })
	t.Run("ReceiptVerificationFailures", func(t *testing.T) { testReceiptVerificationFailures(t, mk) })
	t.Run("Rejections", func(t *testing.T) { testRejections(t, mk) })
	t.Run("Restart", func(t *testing.T) { testRestart(t, mk) })
}
