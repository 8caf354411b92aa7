package djimport

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// capped selects column as text when it is at most limit bytes long, NULL
// otherwise, followed by its length: an absurd value is refused without
// being transferred.
func capped(column string, limit int) string {
	return fmt.Sprintf("CASE WHEN octet_length((%[1]s)::text) <= %[2]d THEN (%[1]s)::text END, octet_length((%[1]s)::text)", column, limit)
}

// field is a capped column as read.
type field struct {
	v   sql.NullString
	len sql.NullInt64
}

// text returns the value, or why there is none usable.
func (f field) text(name string) (string, bool, string) {
	switch {
	case f.len.Valid && !f.v.Valid:
		return "", false, fmt.Sprintf("%s: %d bytes, more than the %d an importable hook can have", name, f.len.Int64, maxHookField)
	case !f.v.Valid:
		return "", false, ""
	}
	return f.v.String, true, ""
}

type hookRow struct {
	id, userID         int64
	created, modified  sql.NullTime
	active             sql.NullBool
	url, secret, event field
	callback           field
	countdown, headers field
	config             field
}

func (im *importer) importHooks(ctx context.Context) error {
	cols := []string{"id", "user_id", "created_date", "modified_date", "is_active"}
	for _, c := range []string{"target_url", "secret_key", "event_type", "callback", "retry_countdown_config", "additional_headers", "config"} {
		cols = append(cols, capped(c, maxHookField))
	}
	total, rows, err := im.read(ctx, "whisperer_webhook", "whisperer_webhook", strings.Join(cols, ", "), "id")
	if err != nil {
		return err
	}
	defer rows.Close()
	done := 0
	seenTypes := map[string]bool{}
	for rows.Next() {
		var h hookRow
		if err := rows.Scan(&h.id, &h.userID, &h.created, &h.modified, &h.active,
			&h.url.v, &h.url.len, &h.secret.v, &h.secret.len, &h.event.v, &h.event.len, &h.callback.v, &h.callback.len,
			&h.countdown.v, &h.countdown.len, &h.headers.v, &h.headers.len, &h.config.v, &h.config.len); err != nil {
			return fmt.Errorf("read whisperer_webhook: %w", err)
		}
		done++
		if err := im.webhook(ctx, &h, seenTypes); err != nil {
			return err
		}
		im.progress("hooks", done, total, im.rep.Hooks)
	}
	return rows.Err()
}

// webhook imports one hook: as it is when Whisperer accepts every field;
// inactive, with the reason, when only its callback or countdown is not
// accepted (a plugin may supply them later); not at all otherwise.
func (im *importer) webhook(ctx context.Context, h *hookRow, seenTypes map[string]bool) error {
	c := &im.rep.Hooks
	id := fmt.Sprint(h.id)
	skip := func(reason string) {
		c.Skipped++
		im.hooks[h.id] = hookRef{skip: "its webhook " + id + " was not imported"}
		im.rep.problem("whisperer_webhook", id, "skipped", reason)
	}
	u, ok := im.users[h.userID]
	if !ok {
		skip(fmt.Sprintf("its user %d was not imported", h.userID))
		return nil
	}
	doc, notes, problems := hookDocument(h)
	if len(problems) > 0 {
		skip(strings.Join(problems, "; "))
		return nil
	}
	w, verr, err := im.t.CheckHook(ctx, doc)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", id, err)
	}
	if verr.Fields["event_type"] == nil && webhook.Reserved(w.EventType) {
		// The API's rule: the operational events tell of every tenant's
		// hooks, so only an admin or a publisher may subscribe to them.
		switch {
		case !u.role.CanPublish():
			skip(fmt.Sprintf("event_type: only admins and publishers may subscribe to Whisperer's operational events "+
				"(event types starting with %q), and user %q is a %s", webhook.OpsPrefix, u.username, u.role))
			return nil
		case !slices.Contains(webhook.OpsEventTypes, w.EventType):
			skip(fmt.Sprintf("event_type: %q is not one of Whisperer's operational events (%s)",
				w.EventType, strings.Join(webhook.OpsEventTypes, ", ")))
			return nil
		}
	}
	var reasons []string
	if !verr.Empty() {
		other := maps.Clone(verr.Fields)
		delete(other, "callback")
		delete(other, "retry_countdown_config")
		if len(other) > 0 {
			skip("Whisperer refuses it: " + strings.Join((&webhook.ValidationError{Fields: other}).Messages(), "; "))
			return nil
		}
		if verr.Fields["callback"] != nil {
			reasons = append(reasons, fmt.Sprintf("callback %q is not registered by any plugin (see docs/PLUGINS.md)", w.Callback))
		}
		if cd := verr.Fields["retry_countdown_config"]; cd != nil {
			w.RetryCountdown = rawCountdown(doc["retry_countdown_config"])
			reasons = append(reasons, "retry_countdown_config is refused: "+
				strings.Join((&webhook.ValidationError{Fields: map[string]any{"retry_countdown_config": cd}}).Messages(), "; "))
		}
	}
	w.UserID = u.id
	w.CreatedAt, w.ModifiedAt = timeOr(h.created), timeOr(h.modified)
	reason := ""
	if len(reasons) > 0 {
		reason = "imported from dj-whisperer inactive: " + strings.Join(reasons, "; ")
		if w.IsActive {
			im.rep.Inactive++
		}
		w.IsActive = false
		im.rep.problem("whisperer_webhook", id, "imported inactive", strings.Join(reasons, "; ")+
			"; fix it, then activate it with PATCH {\"is_active\": true} or whisperer hooks enable")
	}
	for _, n := range notes {
		im.rep.problem("whisperer_webhook", id, "imported changed", n)
	}
	ref := hookRef{userID: u.id, eventType: w.EventType, active: w.IsActive}
	if u.id != 0 {
		existing, err := im.t.HookID(ctx, u.id, w.TargetURL, w.EventType)
		switch {
		case err == nil:
			c.Existing++
			ref.id = existing
			im.hooks[h.id] = ref
			return nil
		case !errors.Is(err, webhook.ErrNotFound):
			return err
		}
	}
	if im.opts.DryRun {
		c.Imported++
		im.hooks[h.id] = ref
		return nil
	}
	if !seenTypes[w.EventType] && !webhook.Reserved(w.EventType) {
		// dj-whisperer's event types lived in Python (registry); Whisperer's
		// are rows, and a hook may subscribe only to a registered one.
		// Operational types are Whisperer's own, registered when it opens
		// the database.
		if err := im.t.AddEventTypes(ctx, w.EventType); err != nil {
			return err
		}
		seenTypes[w.EventType] = true
	}
	stored, err := im.t.ImportWebhook(ctx, w, reason)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", id, err)
	}
	c.Imported++
	ref.id = stored.ID
	im.hooks[h.id] = ref
	return nil
}

// hookDocument is h as a hook body for CheckHook. Credentials in
// target_url (requests sent them as basic auth) move into config.auth,
// as Whisperer does for its own older hooks, unless config.auth is set.
// notes say what changed; problems why h cannot be read at all.
func hookDocument(h *hookRow) (doc map[string]json.RawMessage, notes, problems []string) {
	doc = map[string]json.RawMessage{}
	str := func(name string, f field, required bool) string {
		v, ok, why := f.text(name)
		switch {
		case why != "":
			problems = append(problems, why)
		case !ok && required:
			problems = append(problems, name+": NULL")
		case ok:
			doc[name] = jsonString(v)
		}
		return v
	}
	obj := func(name string, f field) map[string]json.RawMessage {
		v, ok, why := f.text(name)
		switch {
		case why != "":
			problems = append(problems, why)
			return nil
		case !ok:
			return nil // NULL: the field's default, as the API reads null
		case !json.Valid([]byte(v)):
			problems = append(problems, name+": not valid JSON")
			return nil
		}
		doc[name] = json.RawMessage(v)
		var m map[string]json.RawMessage
		_ = json.Unmarshal([]byte(v), &m)
		return m
	}
	target := str("target_url", h.url, true)
	str("event_type", h.event, true)
	str("secret_key", h.secret, false)
	if cb, _, _ := h.callback.text("callback"); cb != "" {
		str("callback", h.callback, false)
	}
	obj("retry_countdown_config", h.countdown)
	obj("additional_headers", h.headers)
	cfg := obj("config", h.config)
	doc["is_active"] = json.RawMessage(fmt.Sprint(!h.active.Valid || h.active.Bool))
	if _, ok := doc["retry_countdown_config"]; !ok && len(problems) == 0 {
		doc["retry_countdown_config"] = json.RawMessage("{}")
	}
	if u, err := url.Parse(target); err == nil && u.User != nil && len(problems) == 0 {
		name := u.User.Username()
		pass, _ := u.User.Password()
		u.User = nil
		doc["target_url"] = jsonString(u.String())
		if cfg == nil {
			cfg = map[string]json.RawMessage{}
		}
		if _, has := cfg["auth"]; has {
			notes = append(notes, "the credentials in target_url were dropped: config.auth, which requests sent instead, is kept")
		} else {
			auth, _ := json.Marshal(map[string]string{"auth_type": "basic", "username": name, "password": pass})
			cfg["auth"] = auth
			notes = append(notes, "the credentials in target_url moved into config.auth (the password is sealed at rest)")
		}
		b, _ := json.Marshal(cfg)
		doc["config"] = b
	}
	return doc, notes, problems
}

// rawCountdown keeps a refused retry_countdown_config as it was, as far as
// it has the shape {"choice": "...", "kwargs": {...}}: the hook is
// inactive, and its owner sees what dj-whisperer had.
func rawCountdown(raw json.RawMessage) webhook.CountdownConfig {
	var obj struct {
		Choice any             `json:"choice"`
		Kwargs json.RawMessage `json:"kwargs"`
	}
	_ = json.Unmarshal(raw, &obj)
	cfg := webhook.CountdownConfig{Kwargs: obj.Kwargs}
	cfg.Choice, _ = obj.Choice.(string)
	if len(cfg.Choice) > 255 {
		cfg.Choice = ""
	}
	if len(cfg.Kwargs) > 4<<10 || !json.Valid(cfg.Kwargs) {
		cfg.Kwargs = nil
	}
	return cfg
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

func timeOr(t sql.NullTime) time.Time {
	if t.Valid {
		return t.Time.UTC()
	}
	return time.Now().UTC()
}
