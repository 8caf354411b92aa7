package store

import "context"

// MigrateTo applies the migrations numbered up to last, as the release
// that shipped last did.
func (s *Store) MigrateTo(ctx context.Context, last int) error { return s.migrate(ctx, last) }
