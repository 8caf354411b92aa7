package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/webhook"
)

// notifyChannel is the PostgreSQL channel publishing notifies so that every
// node's dispatcher wakes at once.
const notifyChannel = "whisperer_events"

// Publish fans an event out to every active hook of its type: one webhook
// event row per hook, inserted in the same transaction as the message, so
// nothing accepted can be lost. An unregistered event type is a
// *webhook.ValidationError.
func (s *Store) Publish(ctx context.Context, req webhook.PublishRequest) (webhook.Published, error) {
	payload, err := compactJSON(req.Payload)
	if err != nil {
		return webhook.Published{}, webhook.NewValidationError("payload", "Value must be valid JSON.")
	}
	if req.IdempotencyKey == "" {
		if s.dialect == Postgres {
			return s.publishPostgres(ctx, req, string(payload))
		}
		return s.publishSQLite(ctx, req, string(payload))
	}
	var out webhook.Published
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		out = webhook.Published{}
		if req.IdempotencyKey != "" {
			evs, found, err := s.eventsOfIdempotentMessage(ctx, tx, req)
			if err != nil || found {
				out = webhook.Published{Events: evs, Replayed: found}
				return err
			}
		}
		ok, err := tx.NewSelect().Model((*eventTypeRow)(nil)).Where("name = ?", req.EventType).Exists(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return webhook.NewValidationError("event_type", fmt.Sprintf("%q is not a valid choice.", req.EventType))
		}
		now := s.now().UTC()
		msg := &messageRow{EventType: req.EventType, Payload: string(payload), CreatedAt: now}
		if req.PublisherID != 0 {
			msg.PublisherID = &req.PublisherID
		}
		if req.IdempotencyKey != "" {
			msg.IdempotencyKey = &req.IdempotencyKey
		}
		if _, err := tx.NewInsert().Model(msg).Returning("id").Exec(ctx); err != nil {
			return err
		}
		var hooks []struct {
			ID     int64 `bun:"id"`
			UserID int64 `bun:"user_id"`
		}
		if err := tx.NewSelect().Table("webhooks").Column("id", "user_id").
			Where("event_type = ?", req.EventType).Where("is_active").OrderExpr("id").
			Scan(ctx, &hooks); err != nil {
			return err
		}
		due := micros(now.Add(req.Hold))
		if s.dialect == Postgres && len(hooks) > 0 {
			// Due by the database's clock, as every queue time there.
			if err := tx.QueryRowContext(ctx, "SELECT "+pgNow).Scan(&due); err != nil {
				return err
			}
			due += req.Hold.Microseconds()
		}
		rows := make([]eventRow, len(hooks))
		for i, h := range hooks {
			rows[i] = eventRow{
				UUID: newUUID(), MessageID: msg.ID, WebhookID: h.ID, UserID: h.UserID,
				EventType: req.EventType, State: string(webhook.StatePending),
				NextAttemptAt: due, CreatedAt: now, ModifiedAt: now,
			}
		}
		// Chunks keep SQLite under its bound-variable limit on wide fan-outs.
		for start := 0; start < len(rows); start += 500 {
			chunk := rows[start:min(start+500, len(rows))]
			if _, err := tx.NewInsert().Model(&chunk).Returning("id").Exec(ctx); err != nil {
				return err
			}
		}
		if len(rows) > 0 && s.dialect == Postgres && req.Hold == 0 {
			if _, err := tx.ExecContext(ctx, "SELECT pg_notify(?, '')", notifyChannel); err != nil {
				return err
			}
		}
		out.Events = make([]webhook.Event, len(rows))
		for i := range rows {
			out.Events[i] = rows[i].domain(msg.Payload)
		}
		return nil
	})
	if err != nil {
		if isUniqueViolation(err) && req.IdempotencyKey != "" {
			// A concurrent publish with the same key won: answer with its events.
			evs, _, err2 := s.eventsOfIdempotentMessage(ctx, s.db, req)
			if err2 != nil {
				return webhook.Published{}, unavailableErr(req.EventType, err2)
			}
			return webhook.Published{Events: evs, Replayed: true}, nil
		}
		var verr *webhook.ValidationError
		if errors.As(err, &verr) {
			return webhook.Published{}, verr
		}
		// As without a key: the values were checked, so what failed is the
		// database or the connection (the transaction wrote nothing).
		return webhook.Published{}, unavailableErr(req.EventType, err)
	}
	return out, nil
}

// unavailableErr marks a failed publish statement as the database's
// failure (the API answers 503, "try again"): the statement's values were
// checked before it was sent, so what fails it is the database or the
// connection — for instance PostgreSQL restarting, whose errors are
// neither network errors nor driver.ErrBadConn.
func unavailableErr(eventType string, err error) error {
	return fmt.Errorf("%w: publish %q: %v", webhook.ErrUnavailable, eventType, err)
}

// pgPublish is Publish without an idempotency key in one statement (one
// round trip instead of seven): the message is inserted only if the event
// type is registered, one row per active hook, and other nodes are
// notified once (an uncorrelated subquery runs once; PostgreSQL also folds
// identical notifications of one transaction). No row back means the
// event type is unknown; one row with a NULL event id means no hook. The
// rows are due $5 µs (the hold) after the database's clock's now.
const pgPublish = `WITH msg AS (
	INSERT INTO messages (event_type, payload, publisher_id, created_at)
	SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM event_types WHERE name = $1)
	RETURNING id
), ev AS (
	INSERT INTO webhook_events (uuid, message_id, webhook_id, user_id, event_type, state, next_attempt_at, created_at, modified_at)
	SELECT replace(gen_random_uuid()::text, '-', ''), msg.id, w.id, w.user_id, $1, 'pending', ` + pgNow + ` + $5, $4, $4
	FROM msg, webhooks w WHERE w.event_type = $1 AND w.is_active
	ORDER BY w.id
	RETURNING id, uuid, webhook_id, user_id, next_attempt_at
)
SELECT msg.id, ev.id, ev.uuid, ev.webhook_id, ev.user_id, ev.next_attempt_at,
	CASE WHEN ev.id IS NOT NULL AND $6 THEN (SELECT pg_notify('` + notifyChannel + `', '')) END
FROM msg LEFT JOIN ev ON true
ORDER BY ev.id`

func (s *Store) publishPostgres(ctx context.Context, req webhook.PublishRequest, payload string) (webhook.Published, error) {
	now := s.now().UTC()
	var publisher *int64
	if req.PublisherID != 0 {
		publisher = &req.PublisherID
	}
	rows, err := s.db.DB.QueryContext(ctx, pgPublish, req.EventType, payload, publisher, now, req.Hold.Microseconds(), req.Hold == 0)
	if err != nil {
		return webhook.Published{}, unavailableErr(req.EventType, err)
	}
	defer rows.Close()
	var out webhook.Published
	found := false
	for rows.Next() {
		found = true
		var msgID int64
		var id, hookID, userID, next *int64
		var uuid, notified *string
		if err := rows.Scan(&msgID, &id, &uuid, &hookID, &userID, &next, &notified); err != nil {
			return webhook.Published{}, unavailableErr(req.EventType, err)
		}
		if id == nil {
			continue
		}
		r := eventRow{ID: *id, UUID: *uuid, MessageID: msgID, WebhookID: *hookID, UserID: *userID,
			EventType: req.EventType, State: string(webhook.StatePending), NextAttemptAt: *next,
			CreatedAt: now, ModifiedAt: now}
		out.Events = append(out.Events, r.domain(payload))
	}
	if err := rows.Err(); err != nil {
		return webhook.Published{}, unavailableErr(req.EventType, err)
	}
	if !found {
		return webhook.Published{}, webhook.NewValidationError("event_type", fmt.Sprintf("%q is not a valid choice.", req.EventType))
	}
	if out.Events == nil {
		out.Events = []webhook.Event{}
	}
	return out, nil
}

// sqlitePublishMessage and sqlitePublishEvents are Publish without an
// idempotency key on SQLite: two statements with bound values in one
// transaction, instead of four built by bun with the values spelled into
// the text (SQLite's parser was a quarter of the server's CPU). The uuid is
// a version 4 uuid made by SQLite, in the same 32-hex-digit form as newUUID.
const (
	sqlitePublishMessage = `INSERT INTO messages (event_type, payload, publisher_id, created_at)
	SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM event_types WHERE name = ?1)
	RETURNING id`
	sqlitePublishEvents = `INSERT INTO webhook_events (uuid, message_id, webhook_id, user_id, event_type, state, next_attempt_at, created_at, modified_at)
	SELECT lower(hex(randomblob(6)) || '4' || substr(hex(randomblob(2)), 2) || substr('89ab', 1 + abs(random() % 4), 1) ||
		substr(hex(randomblob(2)), 2) || hex(randomblob(6))), ?1, id, user_id, ?2, 'pending', ?3, ?4, ?4
	FROM webhooks WHERE event_type = ?2 AND is_active ORDER BY id
	RETURNING id, uuid, webhook_id, user_id`
)

func (s *Store) publishSQLite(ctx context.Context, req webhook.PublishRequest, payload string) (webhook.Published, error) {
	var out webhook.Published
	stmts, err := s.sqlitePublishStmts(ctx)
	if err == nil {
		err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			out, err = s.publishSQLiteTx(ctx, stmts.in(ctx, tx), req, payload)
			return err
		})
	}
	if err != nil {
		if isValidation(err) {
			return webhook.Published{}, err
		}
		return webhook.Published{}, unavailableErr(req.EventType, err)
	}
	return out, nil
}

// sqlitePublish holds the two publish statements, prepared once: SQLite
// parses a statement on every call otherwise, and parsing these two was
// ~20% of the CPU of a publish-heavy run.
type sqlitePublish struct{ msg, events *sql.Stmt }

// sqlitePublishStmts returns the prepared publish statements, preparing them
// on first use (not at Open: the tables may not exist before migrating). It
// must not be called inside a transaction: SQLite has one connection.
func (s *Store) sqlitePublishStmts(ctx context.Context) (sqlitePublish, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if s.pubStmts.msg != nil {
		return s.pubStmts, nil
	}
	msg, err := s.db.DB.PrepareContext(ctx, sqlitePublishMessage)
	if err != nil {
		return sqlitePublish{}, err
	}
	events, err := s.db.DB.PrepareContext(ctx, sqlitePublishEvents)
	if err != nil {
		_ = msg.Close()
		return sqlitePublish{}, err
	}
	s.pubStmts = sqlitePublish{msg: msg, events: events}
	return s.pubStmts, nil
}

// in returns the statements bound to tx; on SQLite's one connection they
// reuse the prepared ones.
func (p sqlitePublish) in(ctx context.Context, tx bun.Tx) sqlitePublish {
	return sqlitePublish{msg: tx.Tx.StmtContext(ctx, p.msg), events: tx.Tx.StmtContext(ctx, p.events)}
}

// publishSQLiteTx runs the two publish statements, bound to a transaction.
// An unknown event type is a *webhook.ValidationError and writes nothing.
func (s *Store) publishSQLiteTx(ctx context.Context, stmts sqlitePublish, req webhook.PublishRequest, payload string) (webhook.Published, error) {
	now := s.now().UTC()
	var publisher *int64
	if req.PublisherID != 0 {
		publisher = &req.PublisherID
	}
	// Times as bun writes them, so that stored values compare as text the
	// same way whichever path wrote them.
	stamp := now.Format("2006-01-02 15:04:05.999999-07:00")
	out := webhook.Published{Events: []webhook.Event{}}
	var msgID int64
	if err := stmts.msg.QueryRowContext(ctx, req.EventType, payload, publisher, stamp).Scan(&msgID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return out, webhook.NewValidationError("event_type", fmt.Sprintf("%q is not a valid choice.", req.EventType))
		}
		return out, err
	}
	rows, err := stmts.events.QueryContext(ctx, msgID, req.EventType, micros(now.Add(req.Hold)), stamp)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		r := eventRow{MessageID: msgID, EventType: req.EventType, State: string(webhook.StatePending),
			NextAttemptAt: micros(now.Add(req.Hold)), CreatedAt: now, ModifiedAt: now}
		if err := rows.Scan(&r.ID, &r.UUID, &r.WebhookID, &r.UserID); err != nil {
			return out, err
		}
		out.Events = append(out.Events, r.domain(payload))
	}
	// RETURNING order is unspecified; answer in hook order like the
	// PostgreSQL path.
	slices.SortFunc(out.Events, func(a, b webhook.Event) int { return cmp.Compare(a.ID, b.ID) })
	return out, rows.Err()
}

func isValidation(err error) bool {
	var verr *webhook.ValidationError
	return errors.As(err, &verr)
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

// newUUID returns a random (version 4) UUID as 32 hex digits, the form
// dj-whisperer sends in event.uuid.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// ListEvents returns one page of the webhook events sc may see, newest
// first, each with its hook and attempts.
func (s *Store) ListEvents(ctx context.Context, sc webhook.Scope, f webhook.EventFilter, p webhook.Page) ([]webhook.Job, webhook.PageInfo, error) {
	ids, info, err := s.EventIDs(ctx, sc, f, p)
	if err != nil {
		return nil, webhook.PageInfo{}, err
	}
	jobs, err := s.EventsByID(ctx, sc, ids)
	return jobs, info, err
}

// EventIDs returns the ids of ListEvents' page, newest first: a list can
// then load its events a few at a time (EventsByID), so that its memory
// does not grow with the size of the events of a whole page.
func (s *Store) EventIDs(ctx context.Context, sc webhook.Scope, f webhook.EventFilter, p webhook.Page) ([]int64, webhook.PageInfo, error) {
	var ids []int64
	q := applyScope(sc, s.db.NewSelect().Model((*eventRow)(nil)).Column("e.id"), "e.user_id")
	if f.UUID != "" {
		q = q.Where("e.uuid = ?", f.UUID)
	}
	if f.EventType != "" {
		q = q.Where("e.event_type = ?", f.EventType)
	}
	if f.ResponseHTTPStatus != nil {
		q = q.Where("e.response_http_status = ?", *f.ResponseHTTPStatus)
	}
	if f.Delivered != nil {
		q = q.Where("e.delivered = ?", *f.Delivered)
	}
	if !f.CreatedDate.IsZero() {
		day := f.CreatedDate.UTC().Truncate(24 * time.Hour)
		q = q.Where("e.created_at >= ?", day).Where("e.created_at < ?", day.Add(24*time.Hour))
	}
	if !f.CreatedSince.IsZero() {
		q = q.Where("e.created_at >= ?", f.CreatedSince.UTC())
	}
	if !f.CreatedBefore.IsZero() {
		q = q.Where("e.created_at < ?", f.CreatedBefore.UTC())
	}
	if f.WebhookID != 0 {
		q = q.Where("e.webhook_id = ?", f.WebhookID)
	}
	if f.State != "" {
		q = q.Where("e.state = ?", f.State)
	}
	if f.Failed {
		q = q.Where(failedEvent) // unqualified: the query reads one table
	}
	q, limit := paginate(q, p, "e.id")
	if err := q.Scan(ctx, &ids); err != nil {
		return nil, webhook.PageInfo{}, fmt.Errorf("list events: %w", err)
	}
	ids, info := pageInfo(ids, p, limit)
	return ids, info, nil
}

// EventsByID returns the events of ids that sc may see, with their hooks
// and attempts, newest first. An id not found (purged since) is left out.
func (s *Store) EventsByID(ctx context.Context, sc webhook.Scope, ids []int64) ([]webhook.Job, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []eventRow
	q := applyScope(sc, s.db.NewSelect().Model(&rows).Where("e.id IN (?)", bun.List(ids)), "e.user_id")
	if err := q.OrderExpr("e.id DESC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("load events: %w", err)
	}
	return s.assemble(ctx, s.db, rows, true)
}

// Event returns the webhook event with the given id or uuid, with its hook
// and attempts, if sc may see it.
func (s *Store) Event(ctx context.Context, sc webhook.Scope, idOrUUID string) (webhook.Job, error) {
	var rows []eventRow
	q := s.db.NewSelect().Model(&rows)
	switch {
	case sc.All:
	case sc.Published:
		// The hook's owner or the message's publisher; the event is found
		// by a unique key, so the subquery runs once, on the primary key.
		q = q.Where("(e.user_id = ? OR EXISTS (SELECT 1 FROM messages AS m WHERE m.id = e.message_id AND m.publisher_id = ?))",
			sc.UserID, sc.UserID)
	default:
		q = applyScope(sc, q, "e.user_id")
	}
	if id, ok := parseID(idOrUUID); ok {
		q = q.Where("e.id = ?", id)
	} else {
		q = q.Where("e.uuid = ?", normalizeUUID(idOrUUID))
	}
	if err := q.Limit(1).Scan(ctx); err != nil {
		return webhook.Job{}, fmt.Errorf("event %q: %w", idOrUUID, err)
	}
	if len(rows) == 0 {
		return webhook.Job{}, fmt.Errorf("event %q: %w", idOrUUID, webhook.ErrNotFound)
	}
	jobs, err := s.assemble(ctx, s.db, rows, true)
	if err != nil {
		return webhook.Job{}, err
	}
	return jobs[0], nil
}

func parseID(s string) (int64, bool) {
	var id int64
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		id = id*10 + int64(c-'0')
	}
	return id, true
}

// normalizeUUID accepts the dashed form dj-whisperer's docs show.
func normalizeUUID(s string) string {
	return string(bytes.ToLower(bytes.ReplaceAll([]byte(s), []byte("-"), nil)))
}

// assemble loads the hooks, payloads and (optionally) attempts of rows in
// three queries, whatever their number.
func (s *Store) assemble(ctx context.Context, db bun.IDB, rows []eventRow, withAttempts bool) ([]webhook.Job, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	hookIDs := make([]int64, 0, len(rows))
	msgIDs := make([]int64, 0, len(rows))
	eventIDs := make([]int64, len(rows))
	for i, r := range rows {
		hookIDs = append(hookIDs, r.WebhookID)
		msgIDs = append(msgIDs, r.MessageID)
		eventIDs[i] = r.ID
	}
	var hooks []webhookRow
	if err := db.NewSelect().Model(&hooks).Where("id IN (?)", bun.List(dedupe(hookIDs))).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load hooks: %w", err)
	}
	byHook := make(map[int64]*webhookRow, len(hooks))
	for i := range hooks {
		byHook[hooks[i].ID] = &hooks[i]
	}
	var msgs []struct {
		ID      int64  `bun:"id"`
		Payload string `bun:"payload"`
	}
	if err := db.NewSelect().Table("messages").Column("id", "payload").
		Where("id IN (?)", bun.List(dedupe(msgIDs))).Scan(ctx, &msgs); err != nil {
		return nil, fmt.Errorf("load payloads: %w", err)
	}
	payloads := make(map[int64]string, len(msgs))
	for _, m := range msgs {
		payloads[m.ID] = m.Payload
	}
	var attempts map[int64][]webhook.Attempt
	if withAttempts {
		attempts = make(map[int64][]webhook.Attempt, len(rows))
		for from := 0; from < len(eventIDs); from += attemptsBatch {
			arows, err := newestAttempts(ctx, db, eventIDs[from:min(from+attemptsBatch, len(eventIDs))])
			if err != nil {
				return nil, fmt.Errorf("load attempts: %w", err)
			}
			for i := range arows {
				attempts[arows[i].EventID] = append(attempts[arows[i].EventID], arows[i].domain())
			}
		}
	}
	jobs := make([]webhook.Job, 0, len(rows))
	for i := range rows {
		h := byHook[rows[i].WebhookID]
		if h == nil {
			continue // deleted concurrently; cascades remove the event too
		}
		hook := h.domain(s.sealer)
		ev := rows[i].domain(payloads[rows[i].MessageID])
		ev.Attempts = attempts[ev.ID]
		jobs = append(jobs, webhook.Job{Event: ev, Webhook: hook})
	}
	return jobs, nil
}

// attemptsBatch is how many events' attempts one query loads: a compound
// SELECT of one arm per event (SQLite allows 500 arms).
const attemptsBatch = 100

// newestAttempts loads the newest webhook.MaxAttemptsShown attempts of
// each event of ids, newest first: one LIMITed arm per event, each a
// backward range scan of the (event_id, id) index, so the database reads
// no more rows than it returns, however many attempts an event has.
func newestAttempts(ctx context.Context, db bun.IDB, ids []int64) ([]attemptRow, error) {
	arm := "SELECT * FROM (SELECT id, event_id, attempted_at, duration_us, status, body, error FROM delivery_attempts" +
		" WHERE event_id = ? ORDER BY id DESC LIMIT " + strconv.Itoa(webhook.MaxAttemptsShown) + ") AS a"
	arms := make([]string, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		arms[i], args[i] = arm+strconv.Itoa(i), id
	}
	var rows []attemptRow
	err := db.NewRaw(strings.Join(arms, " UNION ALL ")+" ORDER BY id DESC", args...).Scan(ctx, &rows)
	return rows, err
}

func dedupe(ids []int64) []int64 {
	seen := make(map[int64]struct{}, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}
