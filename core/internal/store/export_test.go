package store

// RevocationsWatched reports whether WatchRevocations is listening.
func (s *Store) RevocationsWatched() bool { return s.auth.watching.Load() }

// SetAfterRedeliverRead makes Redeliver call fn between its read and its
// update, so a test can delete the event there.
func SetAfterRedeliverRead(s *Store, fn func()) { s.afterRedeliverRead = fn }
