package store

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/webhook"
)

// pgPublishBatch is pgPublish for many requests in one statement, one
// commit and one notification: the message ids are drawn first so that
// each row of the result can be matched to its request (ord). A request
// whose event type is unknown has no row. The rows are due at the
// database's clock's now.
const pgPublishBatch = `WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS i(event_type, payload, publisher_id, ord)
), valid AS (
	SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS mid, i.*
	FROM input i WHERE EXISTS (SELECT 1 FROM event_types WHERE name = i.event_type)
), msg AS (
	INSERT INTO messages (id, event_type, payload, publisher_id, created_at)
	SELECT mid, event_type, payload, publisher_id, $4 FROM valid
), ev AS (
	INSERT INTO webhook_events (uuid, message_id, webhook_id, user_id, event_type, state, next_attempt_at, created_at, modified_at)
	SELECT replace(gen_random_uuid()::text, '-', ''), v.mid, w.id, w.user_id, v.event_type, 'pending', ` + pgNow + `, $4, $4
	FROM valid v JOIN webhooks w ON w.event_type = v.event_type AND w.is_active
	ORDER BY v.ord, w.id
	RETURNING id, uuid, message_id, webhook_id, user_id, next_attempt_at
)
SELECT v.ord, v.mid, ev.id, ev.uuid, ev.webhook_id, ev.user_id, ev.next_attempt_at,
	CASE WHEN ev.id IS NOT NULL THEN (SELECT pg_notify('` + notifyChannel + `', '')) END
FROM valid v LEFT JOIN ev ON ev.message_id = v.mid
ORDER BY v.ord, ev.id`

// PublishBatch publishes reqs (none with an IdempotencyKey or Hold) in one
// transaction: group commit for concurrent publishers. Each request gets
// its own result or error; an unknown event type fails only its request.
// If the transaction fails, every request gets that error.
func (s *Store) PublishBatch(ctx context.Context, reqs []webhook.PublishRequest) ([]webhook.Published, []error) {
	out := make([]webhook.Published, len(reqs))
	errs := make([]error, len(reqs))
	payloads := make([]string, len(reqs))
	for i, r := range reqs {
		if r.IdempotencyKey != "" || r.Hold != 0 {
			errs[i] = fmt.Errorf("publish batch: request %d has an idempotency key or a hold; publish it alone", i)
			continue
		}
		p, err := compactJSON(r.Payload)
		if err != nil {
			errs[i] = webhook.NewValidationError("payload", "Value must be valid JSON.")
			continue
		}
		payloads[i] = string(p)
	}
	var idx []int // the requests that reach the database
	for i := range reqs {
		if errs[i] == nil {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return out, errs
	}
	var err error
	if s.dialect == Postgres {
		err = s.publishBatchPostgres(ctx, reqs, payloads, idx, out, errs)
	} else {
		err = s.publishBatchSQLite(ctx, reqs, payloads, idx, out, errs)
	}
	if err != nil {
		for _, i := range idx {
			out[i], errs[i] = webhook.Published{}, unavailableErr(reqs[i].EventType, err)
		}
	}
	return out, errs
}

func (s *Store) publishBatchPostgres(ctx context.Context, reqs []webhook.PublishRequest, payloads []string, idx []int, out []webhook.Published, errs []error) error {
	now := s.now().UTC()
	types := make([]string, len(idx))
	bodies := make([]string, len(idx))
	publishers := make([]*int64, len(idx))
	for j, i := range idx {
		types[j], bodies[j] = reqs[i].EventType, payloads[i]
		if reqs[i].PublisherID != 0 {
			publishers[j] = &reqs[i].PublisherID
		}
	}
	rows, err := s.db.DB.QueryContext(ctx, pgPublishBatch, types, bodies, publishers, now)
	if err != nil {
		return err
	}
	defer rows.Close()
	seen := make([]bool, len(idx))
	for rows.Next() {
		var ord, msgID int64
		var id, hookID, userID, next *int64
		var uuid, notified *string
		if err := rows.Scan(&ord, &msgID, &id, &uuid, &hookID, &userID, &next, &notified); err != nil {
			return err
		}
		j := int(ord - 1)
		seen[j] = true
		i := idx[j]
		if out[i].Events == nil {
			out[i].Events = []webhook.Event{}
		}
		if id == nil {
			continue // no active hook for this type
		}
		r := eventRow{ID: *id, UUID: *uuid, MessageID: msgID, WebhookID: *hookID, UserID: *userID,
			EventType: reqs[i].EventType, State: string(webhook.StatePending), NextAttemptAt: *next,
			CreatedAt: now, ModifiedAt: now}
		out[i].Events = append(out[i].Events, r.domain(payloads[i]))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for j, ok := range seen {
		if !ok {
			i := idx[j]
			errs[i] = webhook.NewValidationError("event_type", fmt.Sprintf("%q is not a valid choice.", reqs[i].EventType))
		}
	}
	return nil
}

func (s *Store) publishBatchSQLite(ctx context.Context, reqs []webhook.PublishRequest, payloads []string, idx []int, out []webhook.Published, errs []error) error {
	stmts, err := s.sqlitePublishStmts(ctx)
	if err != nil {
		return err
	}
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		stmts := stmts.in(ctx, tx)
		for _, i := range idx {
			p, err := s.publishSQLiteTx(ctx, stmts, reqs[i], payloads[i])
			if err != nil {
				if !isValidation(err) {
					return err
				}
				errs[i] = err
				continue
			}
			out[i] = p
		}
		return nil
	})
}
