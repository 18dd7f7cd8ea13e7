package scitt

// SetAuditReadHook installs f to run in AuditLog.Query between releasing
// the lock and reading the files.
func SetAuditReadHook(f func()) { testingOnlyAuditRead = f }
