package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// notifyChannel is the PostgreSQL channel publishing notifies so that every
// node's dispatcher wakes at once.
const notifyChannel = "whisperer_events"

// Publish publishes one request: a batch of one (see PublishBatch).
func (s *Store) Publish(ctx context.Context, req webhook.PublishRequest) (webhook.Published, error) {
	out, errs := s.PublishBatch(ctx, []webhook.PublishRequest{req})
	return out[0], errs[0]
}

// PublishBatch publishes reqs in one transaction (group commit for
// concurrent publishers), and is the one way anything is published. Each
// request fans its event out to every active hook of its type: one
// webhook event row per hook, inserted in the transaction that inserts the
// message, so nothing accepted can be lost.
//
// Each request gets its own result or error. A payload that is not JSON
// is webhook.ErrInvalidPayload and an unregistered event type a
// *webhook.UnknownEventTypeError, failing only their request; if the
// transaction fails, each request in it gets a webhook.ErrUnavailable
// error (the values were checked, so what failed is the database or the
// connection). A request whose IdempotencyKey its publisher already used
// gets that publish's events, Replayed; so does a request repeating the
// key of an earlier one of the batch. A request with a Hold is due only
// after it and wakes no dispatcher.
func (s *Store) PublishBatch(ctx context.Context, reqs []webhook.PublishRequest) ([]webhook.Published, []error) {
	return s.PublishLeased(ctx, reqs, webhook.PublishLease{})
}

// PublishLeased is PublishBatch that also leases up to lease.Limit of the
// new rows to lease.Owner, in the same statement: they are written
// pending and leased under a new lease token (as Claim leases them), and
// come back in Published.Jobs, so the publishing node's dispatcher sends
// them without claiming. Rows past the limit, of held requests, and of a
// replayed key are written and announced as PublishBatch writes them; a
// publish whose every row is leased announces nothing. If the node dies
// before sending them, any node claims them once the lease has ended.
func (s *Store) PublishLeased(ctx context.Context, reqs []webhook.PublishRequest, lease webhook.PublishLease) ([]webhook.Published, []error) {
	var pl publishLease
	if lease.Limit > 0 {
		pl = publishLease{token: newLeaseToken(lease.Owner), lease: lease.Lease, limit: lease.Limit}
	}
	out := make([]webhook.Published, len(reqs))
	errs := make([]error, len(reqs))
	payloads := make([]string, len(reqs))
	for i, r := range reqs {
		p, err := compactJSON(r.Payload)
		if err != nil {
			errs[i] = webhook.ErrInvalidPayload
			continue
		}
		payloads[i] = string(p)
	}
	done := make([]bool, len(reqs)) // answered by a replay
	first := map[int]int{}          // a request repeating an earlier one's key: that one
	for try := 0; ; try++ {
		var idx []int // the requests to write
		keyed := false
		keys := map[idempotency]int{}
		for i, r := range reqs {
			if errs[i] != nil || done[i] {
				continue
			}
			if r.IdempotencyKey != "" {
				k := idempotency{r.PublisherID, r.IdempotencyKey}
				if j, ok := keys[k]; ok && r.PublisherID != 0 { // no publisher: no key
					first[i] = j
					continue
				}
				keys[k] = i
				evs, found, err := s.eventsOfIdempotentMessage(ctx, s.db, r)
				if err != nil {
					errs[i] = unavailableErr(r.EventType, err)
					continue
				}
				if found {
					out[i], done[i] = webhook.Published{Events: evs, Replayed: true}, true
					continue
				}
				keyed = true
			}
			idx = append(idx, i)
		}
		if len(idx) == 0 {
			break
		}
		wreqs, wpayloads := make([]webhook.PublishRequest, len(idx)), make([]string, len(idx))
		for j, i := range idx {
			wreqs[j], wpayloads[j] = reqs[i], payloads[i]
		}
		wout, werrs, err := s.drv.publish(ctx, wreqs, wpayloads, pl)
		if err == nil {
			for j, i := range idx {
				out[i], errs[i] = wout[j], werrs[j]
			}
			break
		}
		if try == 0 && keyed && isUniqueViolation(err) {
			// A concurrent publish with one of the keys won: the lookup
			// now finds its events.
			continue
		}
		for _, i := range idx {
			errs[i] = unavailableErr(reqs[i].EventType, err)
		}
		break
	}
	for i, j := range first {
		out[i], errs[i] = out[j], errs[j]
		if errs[i] == nil {
			out[i] = webhook.Published{Events: slices.Clone(out[j].Events), Replayed: true}
		}
	}
	return out, errs
}

// publishLease is a PublishLease with its token drawn: the driver leases
// up to limit of the new rows (of requests without a hold) under token,
// until lease after its clock's now. The zero value leases none.
type publishLease struct {
	token string
	lease time.Duration
	limit int
}

// idempotency is what an idempotency key is unique within.
type idempotency struct {
	publisher int64
	key       string
}

// unavailableErr marks a failed publish statement as the database's
// failure (the API answers 503, "try again"): the statement's values were
// checked before it was sent, so what fails it is the database or the
// connection — for instance PostgreSQL restarting, whose errors are
// neither network errors nor driver.ErrBadConn.
func unavailableErr(eventType string, err error) error {
	return fmt.Errorf("%w: publish %q: %v", webhook.ErrUnavailable, eventType, err)
}

func (s *Store) eventsOfIdempotentMessage(ctx context.Context, db bun.IDB, req webhook.PublishRequest) ([]webhook.Event, bool, error) {
	var msg messageRow
	err := db.NewSelect().Model(&msg).
		Where("publisher_id = ?", req.PublisherID).Where("idempotency_key = ?", req.IdempotencyKey).
		Scan(ctx)
	if err != nil {
		if notFound(err) == webhook.ErrNotFound {
			return nil, false, nil
		}
		return nil, false, err
	}
	var rows []eventRow
	if err := db.NewSelect().Model(&rows).Where("message_id = ?", msg.ID).Order("id").Scan(ctx); err != nil {
		return nil, false, err
	}
	out := make([]webhook.Event, len(rows))
	for i := range rows {
		out[i] = rows[i].domain(msg.Payload)
	}
	return out, true, nil
}

func compactJSON(raw json.RawMessage) ([]byte, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
