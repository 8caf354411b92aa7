package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/webhook"
)

// Postpone gives back owner's leases on ids without recording an attempt
// and makes them due at until: the dispatcher's per-hook rate limit
// (config.rate_limit_per_second) hands over-limit jobs back this way
// instead of holding a worker while they wait. retry_count, retry_base and
// the state are unchanged, so the postponement costs the event none of its
// attempts. Rows no longer leased to owner, or no longer pending, are left
// alone. A failure wraps webhook.ErrUnavailable; the leases then simply
// expire and the events come back later.
func (s *Store) Postpone(ctx context.Context, owner string, ids []int64, until time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	var err error
	if s.dialect == Postgres {
		// One prepared statement, as the other hot queue statements.
		_, err = s.db.DB.ExecContext(ctx, pgPostpone, ids, micros(until), owner)
	} else {
		_, err = s.db.NewUpdate().Model((*eventRow)(nil)).
			Set("lease_owner = NULL").Set("next_attempt_at = ?", micros(until)).
			Where("id IN (?)", bun.List(ids)).Where("lease_owner = ?", owner).Where("state = 'pending'").
			Exec(ctx)
	}
	if err != nil {
		return fmt.Errorf("%w: postpone %d events: %v", webhook.ErrUnavailable, len(ids), err)
	}
	return nil
}

const pgPostpone = `UPDATE webhook_events SET lease_owner = NULL, next_attempt_at = $2
	WHERE id = ANY($1) AND lease_owner = $3 AND state = 'pending'`
