package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A claimed row keeps state 'pending' and its due time (next_attempt_at)
// and gets lease_owner and lease_until (the lease's end) set: columns no
// index holds, so the claim writes no index entry (on PostgreSQL a HOT
// update) and leaves no dead entry in the due index's scan range. The
// due-events index alone finds both never-claimed rows and rows whose lease
// expired (a crashed node's); the claim's range scan passes over at most the
// rows leased right now, however many delivered or future rows the table
// holds.

const eventColumns = "id, uuid, message_id, webhook_id, user_id, event_type, state, delivered, retry_count, retry_base, next_attempt_at, lease_owner, lease_until, response_http_status, response_content, created_at, modified_at"

// notLeased is true of a row nobody holds a live lease on, at now (a
// clock expression). A row claimed by a release before lease_until has its
// lease's end in next_attempt_at (the migration copies it; a node of that
// release still running during an upgrade keeps writing it there).
const notLeased = "(lease_owner IS NULL OR COALESCE(lease_until, next_attempt_at) <= %[1]s)"

// Claim leases up to limit due events for lease, oldest due first. Every
// call draws a new lease token ("owner/random", stored in lease_owner and
// set as Job.Lease on each job): Complete, Postpone and Release act only
// while the row still holds it. On PostgreSQL "now" and the lease's end
// are the database's clock, so a node whose clock runs ahead neither takes
// live leases nor makes its own outlast their time.
func (s *Store) Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]webhook.Job, error) {
	token := newLeaseToken(owner)
	jobs, err := s.drv.claimDue(ctx, token, lease, limit)
	return leased(jobs, token, err)
}

// ClaimEvents leases the given pending events that nobody holds and that
// have no attempt in their current series (retry_count = retry_base), for
// an inline ("async": false) first attempt, as Claim does. An event the
// claim loop already attempted waits for its retry's countdown: sending it
// again inline would be a second request, early.
func (s *Store) ClaimEvents(ctx context.Context, owner string, ids []int64, lease time.Duration) ([]webhook.Job, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	token := newLeaseToken(owner)
	jobs, err := s.drv.claimEvents(ctx, token, lease, ids)
	return leased(jobs, token, err)
}

// newLeaseToken returns a lease token of owner that no other claim has:
// the owner's name keeps the column readable ("which node holds it").
func newLeaseToken(owner string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return owner + "/" + hex.EncodeToString(b[:])
}

// leased sets the lease token of claimed jobs, or makes a failed claim
// webhook.ErrUnavailable.
func leased(jobs []webhook.Job, token string, err error) ([]webhook.Job, error) {
	if err != nil {
		return nil, fmt.Errorf("%w: claim due events: %v", webhook.ErrUnavailable, err)
	}
	for i := range jobs {
		jobs[i].Lease = token
	}
	return jobs, nil
}

// Complete records attempts and their outcomes in one transaction. A
// result is written only while its event still holds the result's lease
// (Result.Lease): a result of an earlier claim — the lease expired and
// another node, or this one, claimed the event again — is skipped, and the
// current claim's result wins. Of several results for one event in one
// call, the first that carries the event's lease is written and the rest
// are stale, on both backends. A pending result's retry is due
// NextAttemptAt minus the store's clock after the write, by the database's
// clock.
func (s *Store) Complete(ctx context.Context, results []webhook.Result) error {
	results = firstPerLease(results)
	if len(results) == 0 {
		return nil
	}
	now := s.now().UTC()
	c, err := s.drv.complete(ctx, results, now)
	if err != nil {
		return fmt.Errorf("%w: complete %d results: %v", webhook.ErrUnavailable, len(results), err)
	}
	s.pruneRollups(ctx, now)
	s.report(results, c)
	return nil
}

// firstPerLease drops every result but the first of each (event, lease):
// the same claim's result sent twice is one result.
func firstPerLease(results []webhook.Result) []webhook.Result {
	type key struct {
		id    int64
		lease string
	}
	seen := make(map[key]bool, len(results))
	out := results[:0:0]
	for _, r := range results {
		k := key{r.EventID, r.Lease}
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	if len(out) == len(results) {
		return results
	}
	return out
}

// Release gives back leases without recording an attempt, making the
// events due at once (graceful shutdown of jobs never started). A lease the
// event no longer holds is left alone.
func (s *Store) Release(ctx context.Context, leases []webhook.LeaseRef) error {
	if err := s.giveBack(ctx, leases, s.now()); err != nil {
		return fmt.Errorf("%w: release %d leases: %v", webhook.ErrUnavailable, len(leases), err)
	}
	return nil
}

// giveBack clears the given leases of pending events and makes the events
// due at until (by the store's clock; on PostgreSQL the wait until then is
// added to the database's clock).
func (s *Store) giveBack(ctx context.Context, leases []webhook.LeaseRef, until time.Time) error {
	if len(leases) == 0 {
		return nil
	}
	ids := make([]int64, len(leases))
	tokens := make([]string, len(leases))
	for i, l := range leases {
		ids[i], tokens[i] = l.EventID, l.Lease
	}
	return s.drv.giveBack(ctx, ids, tokens, until)
}

// Redeliver makes the event due now and starts a new series of attempts.
// An event already delivered is webhook.ErrDelivered unless force, and
// one being delivered right now webhook.ErrDelivering, each in a
// *webhook.EventError.
func (s *Store) Redeliver(ctx context.Context, sc webhook.Scope, idOrUUID string, force bool) (webhook.Job, error) {
	return s.RedeliverHeld(ctx, sc, idOrUUID, force, 0)
}

// RedeliverHeld is Redeliver for an inline ("async": false) redelivery:
// as a publish with a Hold, the event is due only after hold and no
// NOTIFY is sent, so no dispatcher claims it before the request's
// ClaimEvents does (which takes it: it is pending and nobody holds it).
// If the request never gets to it, the claim loop delivers it after hold.
func (s *Store) RedeliverHeld(ctx context.Context, sc webhook.Scope, idOrUUID string, force bool, hold time.Duration) (_ webhook.Job, err error) {
	defer markUnavailable(&err)
	job, err := s.Event(ctx, sc, idOrUUID)
	if err != nil {
		return webhook.Job{}, err
	}
	ev := job.Event
	if ev.State == webhook.StateDelivered && !force {
		return webhook.Job{}, &webhook.EventError{UUID: ev.UUID, Err: webhook.ErrDelivered}
	}
	if s.afterRedeliverRead != nil {
		s.afterRedeliverRead()
	}
	now := s.now()
	clock, clockArgs := s.drv.clock()
	q := s.db.NewUpdate().Model((*eventRow)(nil)).
		Set("state = 'pending'").Set("lease_owner = NULL").Set("lease_until = NULL").Set("retry_base = retry_count").
		Set("next_attempt_at = "+clock+" + ?", append(clockArgs, hold.Microseconds())...).Set("modified_at = ?", now.UTC()).
		Where("id = ?", ev.ID).
		// A row leased right now is being delivered; leave it to finish.
		Where("(state <> 'pending' OR "+fmt.Sprintf(notLeased, clock)+")", clockArgs...)
	if !force {
		// Checked again here: it may have been delivered since it was read.
		q = q.Where("state <> 'delivered'")
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return webhook.Job{}, fmt.Errorf("redeliver %s: %w", ev.UUID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Retention may have deleted it since it was read: that is a 404,
		// not a delivery in progress.
		if _, err := s.Event(ctx, sc, ev.UUID); err != nil {
			return webhook.Job{}, err
		}
		return webhook.Job{}, &webhook.EventError{UUID: ev.UUID, Err: webhook.ErrDelivering}
	}
	if hold == 0 {
		s.notify(ctx)
	}
	return s.Event(ctx, sc, ev.UUID)
}

// RedeliverFailed makes due now every event in range that was given up or
// is waiting for a retry after a failure, and returns how many.
func (s *Store) RedeliverFailed(ctx context.Context, sc webhook.Scope, f webhook.RedeliverFilter) (_ int64, err error) {
	defer markUnavailable(&err)
	now := s.now()
	until := f.Until
	if until.IsZero() {
		until = now
	}
	clock, clockArgs := s.drv.clock()
	q := s.db.NewUpdate().Model((*eventRow)(nil)).
		Set("state = 'pending'").Set("lease_owner = NULL").Set("lease_until = NULL").Set("retry_base = retry_count").
		Set("next_attempt_at = "+clock, clockArgs...).Set("modified_at = ?", now.UTC())
	failedRange(q.QueryBuilder(), sc, f, until.UTC())
	res, err := q.Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("redeliver failed events: %w", err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		s.notify(ctx)
	}
	return n, nil
}

// notify wakes other nodes' dispatchers (in-process wake-ups are the
// caller's business).
func (s *Store) notify(ctx context.Context) {
	_ = s.drv.notify(ctx, s.db, notifyChannel)
}

// Listen calls fn whenever another node publishes, or any node redelivers
// (PostgreSQL LISTEN/NOTIFY), reconnecting on its own, until ctx ends. A
// publish's notification carries its store's tag, and this store's own
// are skipped: whoever publishes through it wakes the node's dispatcher in
// process at once (the API does), and a second wake-up, a round trip
// later, only made the claim loop claim again and find nothing (half the
// claims at 150 events/s). On SQLite, a single-node backend, it only waits
// for ctx. It returns nil when ctx ends.
func (s *Store) Listen(ctx context.Context, fn func(), onErr func(error)) error {
	if !s.drv.supportsListener() {
		<-ctx.Done()
		return nil
	}
	s.listen(ctx, notifyChannel, fn, func(payload string) {
		if payload != s.tag {
			fn()
		}
	}, nil, onErr)
	return nil
}

// NextDue is how long until the earliest pending event not due yet falls
// due, by the database's clock (false: there is none). A claim loop that
// found nothing due sleeps until then, so a retry or postponement another
// node wrote is sent on time rather than at the next poll. It reads one
// entry of the due index, the first past now.
func (s *Store) NextDue(ctx context.Context) (_ time.Duration, ok bool, err error) {
	clock, args := s.drv.clock()
	var wait int64
	err = s.db.QueryRowContext(ctx, `SELECT next_attempt_at - `+clock+` FROM webhook_events
		WHERE state = 'pending' AND next_attempt_at > `+clock+` ORDER BY next_attempt_at LIMIT 1`,
		append(args, args...)...).Scan(&wait)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("%w: next due time: %v", webhook.ErrUnavailable, err)
	}
	return time.Duration(wait) * time.Microsecond, true, nil
}

// Counts returns the number of webhook events in each state.
func (s *Store) Counts(ctx context.Context) (map[webhook.State]int64, error) {
	var rows []struct {
		State string `bun:"state"`
		N     int64  `bun:"n"`
	}
	if err := s.db.NewSelect().Table("webhook_events").ColumnExpr("state, count(*) AS n").
		Group("state").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	out := map[webhook.State]int64{}
	for _, r := range rows {
		out[webhook.State(r.State)] = r.N
	}
	return out, nil
}
