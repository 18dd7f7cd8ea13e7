//go:build !unix

package store

import "log/slog"

// removeEmptyMemtables is a no-op where flock is not available (see
// recover.go).
func removeEmptyMemtables(string, *slog.Logger) error { return nil }
