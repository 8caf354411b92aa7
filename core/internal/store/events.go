package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

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
func (s *Store) EventIDs(ctx context.Context, sc webhook.Scope, f webhook.EventFilter, p webhook.Page) (_ []int64, _ webhook.PageInfo, err error) {
	defer markUnavailable(&err)
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
	if f.CreatedBefore.IsZero() && f.CreatedDate.IsZero() {
		if !f.CreatedSince.IsZero() {
			// Up to now: the newest events are in the range, so the walk
			// newest first finds a page at once; a range read of
			// webhook_events_user_created would read and sort the whole
			// range (SQLite, with no statistics, would choose it).
			q = q.Where(s.drv.unindexed("e.created_at")+" >= ?", f.CreatedSince.UTC())
		}
	} else {
		// A range that ends in the past: narrowed to its events' ids.
		created := createdRange(f)
		lo, hi, ok, err := s.idWindow(ctx, sc, created)
		if err != nil {
			return nil, webhook.PageInfo{}, err
		}
		if ok {
			q = q.Where("e.id >= ?", lo).Where("e.id <= ?", hi)
		}
		q = created(q)
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

// createdRange returns f's bounds on e.created_at.
func createdRange(f webhook.EventFilter) func(*bun.SelectQuery) *bun.SelectQuery {
	return func(q *bun.SelectQuery) *bun.SelectQuery {
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
		return q
	}
}

// idWindowRows bounds the rows idWindow reads.
const idWindowRows = 10000

// idWindow returns the lowest and highest id of the events sc may see in
// the time range created, when it holds at most idWindowRows of them
// (ok), reading them through webhook_events_created or _user_created.
// A list of such a range then walks that id window newest first (the
// primary key or webhook_events_user) instead of every newer event: a
// planner taking ids and created_at for independent (PostgreSQL) read the
// 340,000 events newer than an hour two days ago for the hour's page.
// The window is exact — whatever order concurrent publishes gave ids and
// created_at, every event of the range is in it — and the list keeps the
// created_at bounds. A wider range is left to the planner.
func (s *Store) idWindow(ctx context.Context, sc webhook.Scope, created func(*bun.SelectQuery) *bun.SelectQuery) (lo, hi int64, ok bool, err error) {
	sub := created(applyScope(sc, s.db.NewSelect().Model((*eventRow)(nil)).Column("e.id"), "e.user_id")).Limit(idWindowRows + 1)
	var n int64
	var minID, maxID sql.NullInt64
	if err := s.db.NewSelect().TableExpr("(?) AS w", sub).ColumnExpr("count(*), min(id), max(id)").Scan(ctx, &n, &minID, &maxID); err != nil {
		return 0, 0, false, fmt.Errorf("list events: the range's ids: %w", err)
	}
	if n > idWindowRows {
		return 0, 0, false, nil
	}
	if n == 0 {
		return 1, 0, true, nil // an empty window: no event
	}
	return minID.Int64, maxID.Int64, true, nil
}

// EventsByID returns the events of ids that sc may see, with their hooks
// and attempts, newest first. An id not found (purged since) is left out.
func (s *Store) EventsByID(ctx context.Context, sc webhook.Scope, ids []int64) (_ []webhook.Job, err error) {
	defer markUnavailable(&err)
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
func (s *Store) Event(ctx context.Context, sc webhook.Scope, idOrUUID string) (_ webhook.Job, err error) {
	defer markUnavailable(&err)
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
