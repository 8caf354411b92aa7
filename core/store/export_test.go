package store

// SetAfterRedeliverRead makes Redeliver call fn between its read and its
// update, so a test can delete the event there.
func SetAfterRedeliverRead(s *Store, fn func()) { s.afterRedeliverRead = fn }
