package store

import (
	"context"
	"fmt"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Postpone gives back leases without recording an attempt and makes the
// events due at until: the dispatcher's per-hook rate limit
// (config.rate_limit_per_second) hands over-limit jobs back this way
// instead of holding a worker while they wait. retry_count, retry_base and
// the state are unchanged, so the postponement costs the event none of its
// attempts. A lease the event no longer holds, or an event no longer
// pending, is left alone. until is by the store's clock; on PostgreSQL
// the wait until then is added to the database's clock. A failure wraps
// webhook.ErrUnavailable; the leases then simply expire and the events
// come back later.
func (s *Store) Postpone(ctx context.Context, leases []webhook.LeaseRef, until time.Time) error {
	if err := s.giveBack(ctx, leases, until); err != nil {
		return fmt.Errorf("%w: postpone %d events: %v", webhook.ErrUnavailable, len(leases), err)
	}
	return nil
}
