package djimport

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Events are written in batches of up to batchRows rows or batchBytes of
// payload, whichever comes first: one transaction each.
const (
	batchRows  = 200
	batchBytes = 8 << 20
)

// maxResponseRead bounds response_content as read when
// Options.MaxResponseBytes is unset.
const maxResponseRead = 64 << 10

type eventRow struct {
	id, hookID        int64
	uuid              sql.NullString
	created, modified sql.NullTime
	payload           field
	response          field
	status            sql.NullInt64
	delivered         sql.NullBool
	times             sql.NullString // JSON array, newest first, at most MaxAttemptsShown
	timesLen          sql.NullInt64
	retryCount        sql.NullInt64
}

func (im *importer) importEvents(ctx context.Context) error {
	maxResp := im.opts.MaxResponseBytes
	if maxResp <= 0 {
		maxResp = maxResponseRead
	}
	// The response is cut rather than refused: only its first bytes are kept.
	cols := fmt.Sprintf(`id, webhook_id, uuid::text, created_date, modified_date, %s,
		left(response_content, %d), octet_length(response_content), response_http_status, delivered,
		to_json(request_datetimes[1:%d])::text, cardinality(request_datetimes), retry_count`,
		capped("request_payload", im.opts.MaxPayloadBytes), maxResp, webhook.MaxAttemptsShown)
	total, rows, err := im.read(ctx, "whisperer_webhookevent", "whisperer_webhookevent", cols, "id")
	if err != nil {
		return err
	}
	defer rows.Close()
	var batch []webhook.Event
	size, done := 0, 0
	for rows.Next() {
		var e eventRow
		if err := rows.Scan(&e.id, &e.hookID, &e.uuid, &e.created, &e.modified, &e.payload.v, &e.payload.len,
			&e.response.v, &e.response.len, &e.status, &e.delivered, &e.times, &e.timesLen, &e.retryCount); err != nil {
			return fmt.Errorf("read whisperer_webhookevent: %w", err)
		}
		done++
		ev, ok := im.event(&e)
		if ok {
			batch = append(batch, ev)
			size += len(ev.Payload)
		}
		if len(batch) >= batchRows || size >= batchBytes {
			if err := im.flush(ctx, batch); err != nil {
				return err
			}
			batch, size = batch[:0], 0
		}
		im.progress("events", done, total, im.rep.Events)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read whisperer_webhookevent: %w", err)
	}
	if err := im.flush(ctx, batch); err != nil {
		return err
	}
	return nil
}

// event converts one row, or lists why it cannot be.
func (im *importer) event(e *eventRow) (webhook.Event, bool) {
	c := &im.rep.Events
	uuid, ok := hexUUID(e.uuid.String)
	note := func(action, reason string) {
		im.rep.add(Problem{Table: "whisperer_webhookevent", ID: fmt.Sprint(e.id), UUID: uuid, Action: action, Reason: reason})
	}
	skip := func(reason string) (webhook.Event, bool) {
		c.Skipped++
		note("skipped", reason)
		return webhook.Event{}, false
	}
	if !ok {
		return skip(fmt.Sprintf("uuid %q is not a UUID", e.uuid.String))
	}
	h, ok := im.hooks[e.hookID]
	switch {
	case !ok:
		return skip(fmt.Sprintf("its webhook %d does not exist", e.hookID))
	case h.skip != "":
		return skip(h.skip)
	}
	var payload json.RawMessage
	switch {
	case e.payload.len.Valid && !e.payload.v.Valid:
		return skip(fmt.Sprintf("request_payload is %d bytes, more than server.max_body_bytes (%d): Whisperer could not have accepted it",
			e.payload.len.Int64, im.opts.MaxPayloadBytes))
	case !e.payload.v.Valid:
		payload = json.RawMessage("null")
	case !json.Valid([]byte(e.payload.v.String)):
		return skip("request_payload is not valid JSON")
	default:
		payload = instance(json.RawMessage(e.payload.v.String))
	}
	attempts, err := attemptsOf(e)
	if err != "" {
		return skip(err)
	}
	retries := int(e.retryCount.Int64)
	if !e.retryCount.Valid || retries < 0 || e.retryCount.Int64 > 1<<30 {
		// dj-whisperer leaves it NULL until a retry; every attempt is dated.
		retries = int(e.timesLen.Int64)
	}
	retries = max(retries, len(attempts))
	ev := webhook.Event{
		UUID: uuid, WebhookID: h.id, UserID: h.userID, EventType: h.eventType, Payload: payload,
		ResponseContent: strings.ToValidUTF8(e.response.v.String, "\uFFFD"), Delivered: e.delivered.Bool,
		RetryCount: retries, CreatedAt: timeOr(e.created), ModifiedAt: timeOr(e.modified), Attempts: attempts,
	}
	if e.status.Valid && e.status.Int64 >= 0 && e.status.Int64 <= 999 {
		s := int(e.status.Int64)
		ev.ResponseHTTPStatus = &s
	}
	switch {
	case ev.Delivered:
		ev.State = webhook.StateDelivered
	case !im.opts.Requeue:
		ev.State = webhook.StateGivenUp
	case !h.active:
		ev.State = webhook.StateGivenUp
		note("not requeued",
			"its hook is inactive; imported as given up (whisperer events redeliver sends it once the hook is active)")
	default:
		// A new series of attempts: delivery.max_retries counts from here.
		ev.State, ev.RetryBase = webhook.StatePending, retries
	}
	if len(attempts) > 0 {
		last := &attempts[0]
		if ev.ResponseHTTPStatus != nil {
			last.Status = *ev.ResponseHTTPStatus
		}
		last.Body = ev.ResponseContent
		switch {
		case ev.Delivered:
		case last.Status == 0:
			last.Error = "imported from dj-whisperer: no response"
		default:
			last.Error = fmt.Sprintf("imported from dj-whisperer: HTTP %d", last.Status)
		}
	}
	return ev, true
}

// instance is the published payload inside dj-whisperer's request body
// {"event": {"type", "uuid"}, "payload": ...}: Whisperer stores the
// instance and builds the same body around it. Any other shape is the
// payload as it is.
func instance(body json.RawMessage) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || len(obj) != 2 || obj["event"] == nil || obj["payload"] == nil {
		return body
	}
	return obj["payload"]
}

// attemptsOf makes one attempt per request_datetimes entry, newest first.
// dj-whisperer kept only the last response, so the older attempts carry
// their time and that they failed (a delivered event was not retried).
func attemptsOf(e *eventRow) ([]webhook.Attempt, string) {
	if !e.times.Valid {
		return nil, ""
	}
	var times []*time.Time
	if err := json.Unmarshal([]byte(e.times.String), &times); err != nil {
		return nil, "request_datetimes: " + err.Error()
	}
	out := make([]webhook.Attempt, 0, len(times))
	for _, t := range times {
		if t == nil {
			continue
		}
		out = append(out, webhook.Attempt{AttemptedAt: t.UTC(),
			Error: "imported from dj-whisperer, which kept only the last response"})
	}
	if len(out) > 0 {
		out[0].Error = ""
	}
	return out, ""
}

// hexUUID returns a UUID as Whisperer writes it, 32 lowercase hex digits.
func hexUUID(s string) (string, bool) {
	h := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(h) != 32 {
		return "", false
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", false
	}
	return h, true
}

// flush writes batch, but not the events imported already.
func (im *importer) flush(ctx context.Context, batch []webhook.Event) error {
	if len(batch) == 0 {
		return nil
	}
	uuids := make([]string, len(batch))
	for i := range batch {
		uuids[i] = batch[i].UUID
	}
	existing, err := im.t.ExistingEvents(ctx, uuids)
	if err != nil {
		return err
	}
	fresh := batch[:0:0]
	for _, ev := range batch {
		if existing[ev.UUID] {
			im.rep.Events.Existing++
			continue
		}
		fresh = append(fresh, ev)
	}
	n := len(fresh)
	if !im.opts.DryRun && n > 0 {
		// Dry-run hooks have no ids yet, so only a real run can write.
		if n, err = im.t.ImportEvents(ctx, fresh); err != nil {
			return err
		}
		im.rep.Events.Existing += len(fresh) - n // imported by another run since the check
	}
	im.rep.Events.Imported += n
	for _, ev := range fresh {
		if ev.State == webhook.StatePending {
			im.rep.Requeued++
		}
	}
	return nil
}
