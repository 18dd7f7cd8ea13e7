package store_test

import (
	"os"
	"testing"
)

// TestMain runs the test binary as a crash child (crash_child_test.go) when
// asked to, else the tests.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runWriterChild(dir))
	}
	os.Exit(m.Run())
}
