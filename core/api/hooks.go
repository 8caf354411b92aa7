package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/whisperer/whisperer/core/webhook"
)

// Field limits. target_url's is Django URLField's; the others bound what
// the database and a delivery request have to carry.
const (
	maxURLLen       = 200
	maxNameLen      = 255 // event_type, callback, secret_key
	maxHeaders      = 50
	maxHeaderValLen = 8192
)

// msgAlreadyRegistered answers a second hook with the same user,
// target_url and event_type.
const msgAlreadyRegistered = "This webhook is already registered: the fields user, target_url, event_type must make a unique set."

// mode is which write a hook body is for: create and PUT need every
// required field; PATCH only checks the fields present.
type mode int

const (
	modeCreate mode = iota
	modePut
	modePatch
)

// hookInput is a decoded hook body. has records which fields were sent;
// only those change the stored hook on PUT and PATCH, as in DRF, where
// an omitted optional field keeps its value.
type hookInput struct {
	has       map[string]bool
	targetURL string
	eventType string
	secretKey string
	isActive  bool
	callback  string
	countdown webhook.CountdownConfig
	headers   map[string]string
	config    map[string]any
	// needPassword is set when config.auth came without a password: an
	// update keeps the stored one (the password is write-only, so a
	// client that read the hook cannot send it back).
	needPassword bool
	// rotate keeps the replaced secret_key signing for a while (rotate.go).
	rotate bool
}

// readOnlyFields are ignored when sent: clients round-trip GET → PUT.
var readOnlyFields = map[string]bool{"id": true, "created_date": true, "modified_date": true, "user": true,
	"disabled_reason": true, "disabled_at": true}

// decodeHook checks a hook body's shape and every rule that needs no
// lookup; check adds the ones that do. It never fails other than with
// field errors in errs.
func decodeHook(obj map[string]json.RawMessage, m mode) (hookInput, *webhook.ValidationError) {
	in := hookInput{has: map[string]bool{}}
	errs := &webhook.ValidationError{}
	for k := range obj {
		if readOnlyFields[k] {
			continue
		}
		switch k {
		case "target_url", "event_type", "secret_key", "is_active", "callback",
			"retry_countdown_config", "additional_headers", "config", "rotate":
			in.has[k] = true
		default:
			errs.Add(k, msgUnknownField)
		}
	}
	if m != modePatch {
		for _, k := range []string{"target_url", "event_type"} {
			if !in.has[k] {
				errs.Add(k, msgRequired)
			}
		}
	}
	var msg string
	if in.has["target_url"] {
		if in.targetURL, msg = decodeString(obj["target_url"], false, false, 0); msg != "" {
			errs.Add("target_url", msg)
		} else {
			if len([]rune(in.targetURL)) > maxURLLen {
				errs.Add("target_url", maxLenMsg(maxURLLen))
			}
			if !validURL(in.targetURL) {
				errs.Add("target_url", msgInvalidURL)
			}
		}
	}
	if in.has["event_type"] {
		if in.eventType, msg = decodeString(obj["event_type"], false, false, maxNameLen); msg != "" {
			errs.Add("event_type", msg)
		}
	}
	if in.has["secret_key"] {
		if in.secretKey, msg = decodeString(obj["secret_key"], true, true, maxNameLen); msg != "" {
			errs.Add("secret_key", msg)
		}
	}
	if in.has["rotate"] {
		decodeRotate(obj["rotate"], &in, m, errs)
	}
	if in.has["callback"] {
		if in.callback, msg = decodeString(obj["callback"], true, true, maxNameLen); msg != "" {
			errs.Add("callback", msg)
		}
	}
	if in.has["is_active"] {
		if in.isActive, msg = decodeBool(obj["is_active"]); msg != "" {
			errs.Add("is_active", msg)
		}
	}
	if in.has["retry_countdown_config"] {
		var nested map[string]any
		in.countdown, nested, msg = decodeCountdown(obj["retry_countdown_config"])
		switch {
		case msg != "":
			errs.Add("retry_countdown_config", msg)
		case nested != nil:
			errs.Set("retry_countdown_config", nested)
		}
	}
	if in.has["additional_headers"] {
		var nested map[string]any
		in.headers, nested, msg = decodeHeaders(obj["additional_headers"])
		switch {
		case msg != "":
			errs.Add("additional_headers", msg)
		case nested != nil:
			errs.Set("additional_headers", nested)
		}
	}
	if in.has["config"] {
		var nested map[string]any
		in.config, nested, in.needPassword, msg = decodeConfig(obj["config"])
		if in.needPassword && m == modeCreate {
			nested = map[string]any{"auth": map[string]any{"password": []string{msgRequired}}}
		}
		switch {
		case msg != "":
			errs.Add("config", msg)
		case nested != nil:
			errs.Set("config", nested)
		}
	}
	return in, errs
}

// validURL is Django's URLValidator narrowed to http and https: an
// absolute URL with a host, no whitespace.
func validURL(s string) bool {
	if strings.ContainsAny(s, " \t\r\n\v\f") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Hostname() == "" {
		return false
	}
	if sch := strings.ToLower(u.Scheme); sch != "http" && sch != "https" {
		return false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return true
}

// decodeCountdown reads retry_countdown_config's shape; its choice and
// kwargs are judged by the countdown registry in check.
func decodeCountdown(raw json.RawMessage) (webhook.CountdownConfig, map[string]any, string) {
	if isNull(raw) {
		return webhook.CountdownConfig{}, nil, msgNull
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return webhook.CountdownConfig{}, map[string]any{"non_field_errors": []string{
			fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", pyType(raw))}}, ""
	}
	cfg := webhook.CountdownConfig{Kwargs: obj["kwargs"]}
	if c, ok := obj["choice"]; ok {
		choice, msg := decodeString(c, true, false, 0)
		switch {
		case msg == msgNull:
			return cfg, map[string]any{"choice": []string{msgNull}}, ""
		case msg != "":
			// DRF's ChoiceField compares str(value): a list or a bool is
			// simply not a valid choice.
			return cfg, map[string]any{"choice": []string{choiceMsg(string(bytes.TrimSpace(c)))}}, ""
		case choice == "":
			return cfg, map[string]any{"choice": []string{choiceMsg("")}}, ""
		}
		cfg.Choice = choice
	}
	return cfg, nil, ""
}

// Headers Whisperer sets on every delivery (or the transport owns); a
// hook may not replace them. User-Agent may be.
var reservedHeaders = map[string]bool{
	"content-type": true, "content-length": true, "host": true, "authorization": true,
	"connection": true, "keep-alive": true, "proxy-authorization": true, "proxy-authenticate": true,
	"proxy-connection": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
}

func reservedHeader(name string) bool {
	l := strings.ToLower(name)
	return reservedHeaders[l] || strings.HasPrefix(l, "x-whisperer-") || strings.HasPrefix(l, "webhook-")
}

// decodeHeaders reads additional_headers: an object of header names to
// string values that a delivery can send as they are.
func decodeHeaders(raw json.RawMessage) (map[string]string, map[string]any, string) {
	if isNull(raw) {
		return map[string]string{}, nil, ""
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, nil, fmt.Sprintf("Expected a dictionary of items but got type %q.", pyType(raw))
	}
	if len(obj) > maxHeaders {
		return nil, nil, fmt.Sprintf("Ensure this field has no more than %d headers.", maxHeaders)
	}
	out := make(map[string]string, len(obj))
	nested := map[string]any{}
	for name, v := range obj {
		switch {
		case !validHeaderName(name):
			nested[name] = []string{fmt.Sprintf("%q is not a valid HTTP header name.", name)}
			continue
		case reservedHeader(name):
			nested[name] = []string{fmt.Sprintf("%q is set by Whisperer and cannot be replaced.", name)}
			continue
		}
		val, msg := decodeString(v, true, false, maxHeaderValLen)
		if msg == "" && strings.ContainsAny(val, "\r\n") {
			msg = "Header values may not contain line breaks."
		}
		if msg == "" && strings.ContainsFunc(val, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			msg = "Header values may not contain control characters."
		}
		if msg != "" {
			nested[name] = []string{msg}
			continue
		}
		out[name] = val
	}
	if len(nested) > 0 {
		return nil, nested, ""
	}
	return out, nil, ""
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// decodeConfig reads config, a free-form object whose "auth" key, when
// present, must be basic auth credentials, and whose
// "rate_limit_per_second", when present, must be a positive number.
// needPassword reports an auth without a password.
func decodeConfig(raw json.RawMessage) (cfg map[string]any, nested map[string]any, needPassword bool, msg string) {
	if isNull(raw) {
		return map[string]any{}, nil, false, ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep numbers exactly as sent
	if err := dec.Decode(&cfg); err != nil || cfg == nil {
		return nil, nil, false, fmt.Sprintf("Expected a dictionary of items but got type %q.", pyType(raw))
	}
	rateMsg := checkRateLimit(cfg)
	cfg, nested, needPassword = decodeAuth(cfg)
	if rateMsg != "" {
		if nested == nil {
			nested = map[string]any{}
		}
		nested["rate_limit_per_second"] = []string{rateMsg}
	}
	if nested != nil {
		return nil, nested, false, ""
	}
	return cfg, nil, needPassword, ""
}

// checkRateLimit validates config.rate_limit_per_second: a positive number
// of requests per second, or null (removed: no limit).
func checkRateLimit(cfg map[string]any) string {
	v, ok := cfg["rate_limit_per_second"]
	if !ok {
		return ""
	}
	if v == nil {
		delete(cfg, "rate_limit_per_second")
		return ""
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return "A valid number is required."
	}
	f, err := n.Float64()
	switch {
	case err != nil:
		return "A valid number is required."
	case f <= 0:
		return "Ensure this value is greater than 0."
	}
	return ""
}

// decodeAuth checks config.auth; nested holds its errors.
func decodeAuth(cfg map[string]any) (_ map[string]any, nested map[string]any, needPassword bool) {
	a, ok := cfg["auth"]
	if !ok {
		return cfg, nil, false
	}
	if a == nil {
		delete(cfg, "auth") // null clears the credentials
		return cfg, nil, false
	}
	auth, ok := a.(map[string]any)
	if !ok {
		b, _ := json.Marshal(a)
		return nil, map[string]any{"auth": map[string]any{"non_field_errors": []string{
			fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", pyType(b))}}}, false
	}
	errs := map[string]any{}
	clean := map[string]any{"auth_type": "basic"}
	switch t, ok := auth["auth_type"]; {
	case !ok:
		errs["auth_type"] = []string{msgRequired}
	case t != "basic":
		errs["auth_type"] = []string{choiceMsg(fmt.Sprint(t))}
	}
	switch u, ok := auth["username"]; {
	case !ok:
		errs["username"] = []string{msgRequired}
	default:
		s, isStr := u.(string)
		switch {
		case u == nil:
			errs["username"] = []string{msgNull}
		case !isStr:
			errs["username"] = []string{msgString}
		case strings.TrimSpace(s) == "":
			errs["username"] = []string{msgBlank}
		case strings.ContainsRune(s, ':'):
			// RFC 7617: the user-id ends at the first colon.
			errs["username"] = []string{"A username may not contain \":\"."}
		case strings.ContainsRune(s, 0):
			errs["username"] = []string{msgNullChars}
		default:
			clean["username"] = s
		}
	}
	switch p, ok := auth["password"]; {
	case !ok:
		needPassword = true
	default:
		s, isStr := p.(string)
		switch {
		case p == nil:
			errs["password"] = []string{msgNull}
		case !isStr:
			errs["password"] = []string{msgString}
		case strings.ContainsRune(s, 0):
			errs["password"] = []string{msgNullChars}
		default:
			clean["password"] = s
		}
	}
	if len(errs) > 0 {
		return nil, map[string]any{"auth": errs}, false
	}
	cfg["auth"] = clean
	return cfg, nil, needPassword
}

// check applies the rules that need the registries and the store: a known
// event type, a registered callback, a valid countdown.
func (s *Server) check(ctx context.Context, in *hookInput, errs *webhook.ValidationError) error {
	if in.has["event_type"] && errs.Fields["event_type"] == nil {
		ok, err := s.deps.Store.EventTypeExists(ctx, in.eventType)
		if err != nil {
			return err
		}
		if !ok {
			errs.Add("event_type", choiceMsg(in.eventType))
		}
	}
	if in.has["callback"] && errs.Fields["callback"] == nil && in.callback != "" {
		if s.deps.Callbacks == nil || !slices.Contains(s.deps.Callbacks.Keys(), in.callback) {
			errs.Add("callback", choiceMsg(in.callback))
		}
	}
	if in.has["retry_countdown_config"] && errs.Fields["retry_countdown_config"] == nil {
		clean, err := s.deps.Countdowns.Validate(ctx, in.countdown)
		var verr *webhook.ValidationError
		switch {
		case errors.As(err, &verr):
			errs.Set("retry_countdown_config", verr.Fields)
		case err != nil:
			// A plugin validator that traps must not turn the client's
			// request into a 500: the kwargs are what it could not take.
			s.log.WarnContext(ctx, "countdown validator failed", "plugin", in.countdown.Choice, "error", err,
				"request_id", requestID(ctx))
			errs.Set("retry_countdown_config", map[string]any{"kwargs": []string{
				fmt.Sprintf("The validator of countdown %q failed on these kwargs.", in.countdown.Choice)}})
		default:
			in.countdown = clean
		}
	}
	return nil
}

// apply copies the sent fields onto w.
func (in *hookInput) apply(w *webhook.Webhook) {
	if in.has["target_url"] {
		w.TargetURL = in.targetURL
	}
	if in.has["event_type"] {
		w.EventType = in.eventType
	}
	if in.has["secret_key"] {
		w.SecretKey = in.secretKey
	}
	if in.has["is_active"] {
		w.IsActive = in.isActive
	}
	if in.has["callback"] {
		w.Callback = in.callback
	}
	if in.has["retry_countdown_config"] {
		w.RetryCountdown = in.countdown
	}
	if in.has["additional_headers"] {
		w.AdditionalHeaders = in.headers
	}
	if in.has["config"] {
		w.Config = in.config
	}
}

func (s *Server) createHook(w http.ResponseWriter, r *http.Request) error {
	obj, err := s.readObject(w, r)
	if err != nil {
		return err
	}
	in, errs := decodeHook(obj, modeCreate)
	if err := s.check(r.Context(), &in, errs); err != nil {
		return err
	}
	if err := errs.Err(); err != nil {
		return err
	}
	h := webhook.Webhook{UserID: user(r).ID, IsActive: true, RetryCountdown: s.cfg.DefaultRetryCountdown}
	in.apply(&h)
	h, err = s.deps.Store.CreateWebhook(r.Context(), h)
	if errors.Is(err, webhook.ErrAlreadyExists) {
		return webhook.NewValidationError("non_field_errors", msgAlreadyRegistered)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, renderHook(h, user(r).ID))
}

// hookID reads the {id} path variable; anything but a positive integer is
// a 404, as DRF's lookup finds nothing.
func hookID(r *http.Request) (int64, error) {
	id, ok := parseID(mux.Vars(r)["id"])
	if !ok {
		return 0, webhook.ErrNotFound
	}
	return id, nil
}

func (s *Server) getHook(w http.ResponseWriter, r *http.Request) error {
	id, err := hookID(r)
	if err != nil {
		return err
	}
	h, err := s.deps.Store.Webhook(r.Context(), scope(r), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, renderHook(h, user(r).ID))
}

func (s *Server) putHook(w http.ResponseWriter, r *http.Request) error {
	return s.updateHook(w, r, modePut)
}

func (s *Server) patchHook(w http.ResponseWriter, r *http.Request) error {
	return s.updateHook(w, r, modePatch)
}

// updateHook is PUT and PATCH. The hook is looked up first so another
// user's hook is a 404 whatever the body holds, as DRF's get_object runs
// before the serializer.
func (s *Server) updateHook(w http.ResponseWriter, r *http.Request, m mode) error {
	id, err := hookID(r)
	if err != nil {
		return err
	}
	sc := scope(r)
	h, err := s.deps.Store.Webhook(r.Context(), sc, id)
	if err != nil {
		return err
	}
	obj, err := s.readObject(w, r)
	if err != nil {
		return err
	}
	in, errs := decodeHook(obj, m)
	if in.needPassword {
		if old, ok := h.BasicAuth(); ok {
			in.config["auth"].(map[string]any)["password"] = old.Password
		} else {
			errs.Set("config", map[string]any{"auth": map[string]any{"password": []string{msgRequired}}})
		}
	}
	if err := s.check(r.Context(), &in, errs); err != nil {
		return err
	}
	if err := errs.Err(); err != nil {
		return err
	}
	oldSecret := h.SecretKey
	in.apply(&h)
	rotateSecret(&h, oldSecret, &in, time.Now().Add(s.cfg.SecretRotationOverlap))
	h, err = s.deps.Store.UpdateWebhook(r.Context(), sc, h, in.has["is_active"])
	if errors.Is(err, webhook.ErrAlreadyExists) {
		return webhook.NewValidationError("non_field_errors", msgAlreadyRegistered)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, renderHook(h, user(r).ID))
}

func (s *Server) deleteHook(w http.ResponseWriter, r *http.Request) error {
	id, err := hookID(r)
	if err != nil {
		return err
	}
	if err := s.deps.Store.DeactivateWebhook(r.Context(), scope(r), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listHooks(w http.ResponseWriter, r *http.Request) error {
	var f webhook.HookFilter
	errs := &webhook.ValidationError{}
	var err error
	if f.TargetURL, err = queryValue(r, "target_url"); err != nil {
		return err
	}
	if f.EventType, err = queryValue(r, "event_type"); err != nil {
		return err
	}
	if v, err := queryValue(r, "is_active"); err != nil {
		return err
	} else if v != "" {
		b, ok := parseBool(v)
		if !ok {
			errs.Add("is_active", "Enter a valid boolean.")
		}
		f.IsActive = &b
	}
	if err := errs.Err(); err != nil {
		return err
	}
	p, err := s.page(r)
	if err != nil {
		return err
	}
	hooks, info, err := s.deps.Store.ListWebhooks(r.Context(), scope(r), f, p)
	if err != nil {
		return err
	}
	out := make([]hookJSON, len(hooks))
	for i := range hooks {
		out[i] = renderHook(hooks[i], user(r).ID)
	}
	first, last := int64(0), int64(0)
	if len(hooks) > 0 {
		first, last = hooks[0].ID, hooks[len(hooks)-1].ID
	}
	return writeJSON(w, http.StatusOK, s.pageOf(r, out, info, first, last))
}

// hookJSON is a hook as dj-whisperer's WebhookSerializer writes it, in its
// field order.
type hookJSON struct {
	ID                   int64                   `json:"id"`
	TargetURL            string                  `json:"target_url"`
	EventType            string                  `json:"event_type"`
	SecretKey            *string                 `json:"secret_key,omitempty"` // see renderHook
	IsActive             bool                    `json:"is_active"`
	Callback             string                  `json:"callback"`
	RetryCountdownConfig webhook.CountdownConfig `json:"retry_countdown_config"`
	AdditionalHeaders    map[string]string       `json:"additional_headers"`
	Config               map[string]any          `json:"config"`
	CreatedDate          string                  `json:"created_date"`
	ModifiedDate         string                  `json:"modified_date"`
	// DisabledReason and DisabledAt are Whisperer's: why and when the hook
	// became inactive ("" and null while active). Read-only.
	DisabledReason string  `json:"disabled_reason"`
	DisabledAt     *string `json:"disabled_at"`
}

// renderHook writes h for viewer (a user id). config.auth.password is
// write-only and left out. secret_key is shown to the hook's owner only
// (dj-whisperer returns it to its owner); for anyone else (an admin) the
// field is left out, so an admin's GET → PUT round trip keeps it.
func renderHook(h webhook.Webhook, viewer int64) hookJSON {
	cfg := make(map[string]any, len(h.Config))
	for k, v := range h.Config {
		cfg[k] = v
	}
	if auth, ok := cfg["auth"].(map[string]any); ok {
		clean := make(map[string]any, len(auth))
		for k, v := range auth {
			if k != "password" {
				clean[k] = v
			}
		}
		cfg["auth"] = clean
	}
	headers := h.AdditionalHeaders
	if headers == nil {
		headers = map[string]string{}
	}
	var disabledAt *string
	if h.DisabledAt != nil {
		t := formatTime(*h.DisabledAt)
		disabledAt = &t
	}
	cd := h.RetryCountdown
	if len(cd.Kwargs) == 0 {
		cd.Kwargs = json.RawMessage(`{}`)
	}
	var secret *string
	if h.UserID == viewer {
		secret = &h.SecretKey
	}
	return hookJSON{
		ID: h.ID, TargetURL: h.TargetURL, EventType: h.EventType, SecretKey: secret,
		IsActive: h.IsActive, Callback: h.Callback, RetryCountdownConfig: cd,
		AdditionalHeaders: headers, Config: cfg,
		CreatedDate: formatTime(h.CreatedAt), ModifiedDate: formatTime(h.ModifiedAt),
		DisabledReason: h.DisabledReason, DisabledAt: disabledAt,
	}
}

// formatTime writes t as DRF does, in UTC with a Z, always with
// microseconds so every timestamp has one shape.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}
