package store

import (
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The bun models mirror the tables one to one; conversion to the domain
// types happens here and nowhere else.

type userRow struct {
	bun.BaseModel `bun:"table:users"`
	ID            int64     `bun:"id,pk,autoincrement"`
	Username      string    `bun:"username"`
	Role          string    `bun:"role"`
	CreatedAt     time.Time `bun:"created_at"`
}

func (r *userRow) domain() webhook.User {
	return webhook.User{ID: r.ID, Username: r.Username, Role: webhook.Role(r.Role), CreatedAt: r.CreatedAt}
}

type tokenRow struct {
	bun.BaseModel `bun:"table:api_tokens"`
	ID            int64      `bun:"id,pk,autoincrement"`
	UserID        int64      `bun:"user_id"`
	KeyHash       string     `bun:"key_hash"`
	Prefix        string     `bun:"prefix"`
	CreatedAt     time.Time  `bun:"created_at"`
	RevokedAt     *time.Time `bun:"revoked_at"`
}

type eventTypeRow struct {
	bun.BaseModel `bun:"table:event_types"`
	Name          string    `bun:"name,pk"`
	CreatedAt     time.Time `bun:"created_at"`
}

type webhookRow struct {
	bun.BaseModel     `bun:"table:webhooks"`
	ID                int64     `bun:"id,pk,autoincrement"`
	UserID            int64     `bun:"user_id"`
	TargetURL         string    `bun:"target_url"`
	EventType         string    `bun:"event_type"`
	SecretKey         string    `bun:"secret_key"`
	IsActive          bool      `bun:"is_active"`
	Callback          string    `bun:"callback"`
	RetryCountdown    string    `bun:"retry_countdown_config"`
	AdditionalHeaders string    `bun:"additional_headers"`
	Config            string    `bun:"config"`
	Filter            *string   `bun:"filter"`
	Transform         *string   `bun:"transform"`
	CreatedAt         time.Time `bun:"created_at"`
	ModifiedAt        time.Time `bun:"modified_at"`
	// Written only by Complete and UpdateWebhook, never from a domain value.
	FailingSince   *time.Time `bun:"failing_since"`
	DisabledReason string     `bun:"disabled_reason"`
	DisabledAt     *time.Time `bun:"disabled_at"`
	// SecretsKeyID is the key the secret columns are sealed under; ""
	// while they are in clear (written before encryption, or by a store
	// without a Sealer). See secrets.go.
	SecretsKeyID        string     `bun:"secrets_key_id"`
	PreviousSecretKey   string     `bun:"previous_secret_key"`
	PreviousSecretUntil *time.Time `bun:"previous_secret_until"`
}

func webhookToRow(w *webhook.Webhook) (*webhookRow, error) {
	rc, err := json.Marshal(w.RetryCountdown)
	if err != nil {
		return nil, err
	}
	headers := w.AdditionalHeaders
	if headers == nil {
		headers = map[string]string{}
	}
	ah, err := json.Marshal(headers)
	if err != nil {
		return nil, err
	}
	config := w.Config
	if config == nil {
		config = map[string]any{}
	}
	cfg, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	var transform *string
	if w.Transform != nil {
		b, err := json.Marshal(w.Transform)
		if err != nil {
			return nil, err
		}
		transform = new(string)
		*transform = string(b)
	}
	return &webhookRow{
		Transform: transform,
		ID:        w.ID, UserID: w.UserID, TargetURL: w.TargetURL, EventType: w.EventType,
		SecretKey: w.SecretKey, IsActive: w.IsActive, Callback: w.Callback,
		RetryCountdown: string(rc), AdditionalHeaders: string(ah), Config: string(cfg),
		Filter: filterColumn(w.Filter), CreatedAt: w.CreatedAt, ModifiedAt: w.ModifiedAt,
		PreviousSecretKey: w.PreviousSecretKey, PreviousSecretUntil: utcPtr(w.PreviousSecretUntil),
	}, nil
}

// nullable makes scan destinations accept NULL (a LEFT JOIN that found
// nothing) and leave their value alone then. Pointer-typed destinations
// (a nullable column's) take NULL already.
func nullable(dest []any) []any {
	for i, p := range dest {
		switch p := p.(type) {
		case *int64:
			dest[i] = orNull[int64]{p}
		case *string:
			dest[i] = orNull[string]{p}
		case *bool:
			dest[i] = orNull[bool]{p}
		case *time.Time:
			dest[i] = orNull[time.Time]{p}
		}
	}
	return dest
}

// orNull scans a column into *dst unless it is NULL.
type orNull[T any] struct{ dst *T }

func (o orNull[T]) Scan(src any) error {
	// The drivers' own types first: sql.Null's Scan below moves to the
	// heap, an allocation per column of every row.
	switch v := src.(type) {
	case nil:
		return nil
	case T:
		*o.dst = v
		return nil
	}
	var n sql.Null[T]
	if err := n.Scan(src); err != nil {
		return err
	}
	if n.Valid {
		*o.dst = n.V
	}
	return nil
}

// hookCache converts the hook rows of one claim's answer: hooks repeat
// across a batch, and each one's JSON columns and secrets are decoded once.
type hookCache map[int64]webhook.Webhook

func (c hookCache) domain(r *webhookRow, sl Sealer) webhook.Webhook {
	h, ok := c[r.ID]
	if !ok {
		h = r.domain(sl)
		c[r.ID] = h
	}
	return h
}

// domain converts r, opening its sealed secret columns with sl. It is the
// one place every read of a hook goes through, the claim's included. A
// sealed row with no Sealer, or one that does not open, comes back with
// its secrets empty and SecretsError set, never with a ciphertext: one
// corrupt row must not fail a claim batch or a list that holds others,
// and the dispatcher records a failed attempt for it instead of sending.
func (r *webhookRow) domain(sl Sealer) webhook.Webhook {
	c, err := r.openSecrets(sl)
	if err != nil {
		c = secretCols{headers: "{}", config: withoutPassword(r.Config)}
	}
	w := webhook.Webhook{
		ID: r.ID, UserID: r.UserID, TargetURL: r.TargetURL, EventType: r.EventType,
		SecretKey: c.secret, IsActive: r.IsActive, Callback: r.Callback,
		CreatedAt: r.CreatedAt.UTC(), ModifiedAt: r.ModifiedAt.UTC(),
		DisabledReason: r.DisabledReason, DisabledAt: utcPtr(r.DisabledAt), FailingSince: utcPtr(r.FailingSince),
		PreviousSecretKey: c.previous, PreviousSecretUntil: utcPtr(r.PreviousSecretUntil),
	}
	if r.Filter != nil {
		w.Filter = json.RawMessage(*r.Filter)
	}
	if r.Transform != nil {
		// Written by webhookToRow only; one that does not decode is kept
		// with its name empty, and every attempt fails on it visibly.
		w.Transform = &webhook.TransformConfig{}
		if json.Unmarshal([]byte(*r.Transform), w.Transform) != nil || w.Transform.Name == "" {
			w.Transform = &webhook.TransformConfig{Name: "(unreadable: " + *r.Transform + ")"}
		}
	}
	// The columns are written only by webhookToRow, so they decode.
	_ = json.Unmarshal([]byte(r.RetryCountdown), &w.RetryCountdown)
	_ = json.Unmarshal([]byte(c.headers), &w.AdditionalHeaders)
	// UseNumber keeps integers above 2^53 in config exact.
	dec := json.NewDecoder(strings.NewReader(c.config))
	dec.UseNumber()
	_ = dec.Decode(&w.Config)
	if err != nil {
		w.SecretsError = "the hook's stored secrets cannot be decrypted (" + err.Error() + ")"
	}
	return w
}

// withoutPassword is config with auth.password (sealed, unreadable) left
// out, for a hook whose secrets do not open.
func withoutPassword(config string) string {
	dec := json.NewDecoder(strings.NewReader(config))
	dec.UseNumber()
	var cfg map[string]any
	if dec.Decode(&cfg) != nil {
		return "{}"
	}
	if auth, ok := cfg["auth"].(map[string]any); ok {
		delete(auth, "password")
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "{}"
	}
	return string(b)
}

type messageRow struct {
	bun.BaseModel  `bun:"table:messages"`
	ID             int64     `bun:"id,pk,autoincrement"`
	EventType      string    `bun:"event_type"`
	Payload        string    `bun:"payload"`
	PublisherID    *int64    `bun:"publisher_id"`
	IdempotencyKey *string   `bun:"idempotency_key"`
	CreatedAt      time.Time `bun:"created_at"`
}

type eventRow struct {
	bun.BaseModel      `bun:"table:webhook_events,alias:e"`
	ID                 int64     `bun:"id,pk,autoincrement"`
	UUID               string    `bun:"uuid"`
	MessageID          int64     `bun:"message_id"`
	WebhookID          int64     `bun:"webhook_id"`
	UserID             int64     `bun:"user_id"`
	EventType          string    `bun:"event_type"`
	State              string    `bun:"state"`
	Delivered          bool      `bun:"delivered"`
	RetryCount         int       `bun:"retry_count"`
	RetryBase          int       `bun:"retry_base"`
	NextAttemptAt      int64     `bun:"next_attempt_at"`
	LeaseOwner         *string   `bun:"lease_owner"`
	LeaseUntil         *int64    `bun:"lease_until"`
	ResponseHTTPStatus *int      `bun:"response_http_status"`
	ResponseContent    string    `bun:"response_content"`
	CreatedAt          time.Time `bun:"created_at"`
	ModifiedAt         time.Time `bun:"modified_at"`
}

func (r *eventRow) domain(payload string) webhook.Event {
	next := r.NextAttemptAt
	if r.LeaseOwner != nil && r.LeaseUntil != nil && *r.LeaseUntil > next {
		// Leased: the next attempt is due no sooner than the lease's end.
		next = *r.LeaseUntil
	}
	return webhook.Event{
		ID: r.ID, UUID: r.UUID, WebhookID: r.WebhookID, UserID: r.UserID, EventType: r.EventType,
		Payload: json.RawMessage(payload), ResponseContent: r.ResponseContent,
		ResponseHTTPStatus: r.ResponseHTTPStatus, Delivered: r.Delivered,
		RetryCount: r.RetryCount, RetryBase: r.RetryBase, State: webhook.State(r.State),
		NextAttemptAt: fromMicros(next),
		CreatedAt:     r.CreatedAt.UTC(), ModifiedAt: r.ModifiedAt.UTC(),
	}
}

type attemptRow struct {
	bun.BaseModel `bun:"table:delivery_attempts"`
	ID            int64     `bun:"id,pk,autoincrement"`
	EventID       int64     `bun:"event_id"`
	AttemptedAt   time.Time `bun:"attempted_at"`
	DurationUS    int64     `bun:"duration_us"`
	Status        int       `bun:"status"`
	Body          string    `bun:"body"`
	Error         string    `bun:"error"`
}

func (r *attemptRow) domain() webhook.Attempt {
	return webhook.Attempt{
		ID: r.ID, EventID: r.EventID, AttemptedAt: r.AttemptedAt.UTC(),
		Duration: time.Duration(r.DurationUS) * time.Microsecond,
		Status:   r.Status, Body: r.Body, Error: r.Error,
	}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func micros(t time.Time) int64      { return t.UnixMicro() }
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// filterColumn is the filter column's value: NULL for no filter (JSON null
// included).
func filterColumn(f json.RawMessage) *string {
	if len(f) == 0 || string(f) == "null" {
		return nil
	}
	s := string(f)
	return &s
}
