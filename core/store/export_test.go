package store

// RevocationsWatched reports whether WatchRevocations is listening.
func (s *Store) RevocationsWatched() bool { return s.auth.watching.Load() }
