package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/whisperer/whisperer/core/internal/filter"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Field limits. target_url's is Django URLField's; the others bound what
// the database, a delivery request and a page of a list have to carry
// (docs/API.md lists them).
const (
	maxURLLen       = 200
	maxNameLen      = 255 // event_type, callback, secret_key
	maxHeaders      = webhook.MaxHeaders
	maxHeaderValLen = webhook.MaxHeaderValueLen
	maxHeadersBytes = webhook.MaxHeadersBytes
	// maxConfigBytes and maxKwargsBytes bound config and
	// retry_countdown_config.kwargs as compact JSON, and maxJSONDepth their
	// nesting (the object itself is level 1).
	maxConfigBytes = 16 << 10
	maxKwargsBytes = 4 << 10
	maxJSONDepth   = 8
)

// msgURLCredentials refuses a target_url with userinfo: it would be stored
// and shown in clear, while config.auth's password is write-only.
const msgURLCredentials = "Enter a URL without credentials: set them in config.auth, whose password is write-only."

// hiddenHeaderValue stands for each additional_headers value in a hook
// shown to anyone but its owner (an admin): the values are secrets (API
// keys, tokens). A PUT or PATCH by such a viewer that sends it back for a
// header the hook has keeps the stored value (keepHiddenHeaders).
const hiddenHeaderValue = "********"

// msgHeadersBytes refuses additional_headers past maxHeadersBytes.
var msgHeadersBytes = fmt.Sprintf("Ensure the header names and values total no more than %d bytes.", maxHeadersBytes)

// msgHiddenHeader refuses hiddenHeaderValue for a header the hook lacks.
const msgHiddenHeader = "This hook has no such header, so there is no hidden value to keep: send the value."

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
	// filter is the compact filter document; nil for null (none).
	// pluginFilter is its parse when it names a plugin filter.
	filter       json.RawMessage
	pluginFilter *filter.Filter
	// transform is the hook's transform; nil for null (none).
	transform *webhook.TransformConfig
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
			"retry_countdown_config", "additional_headers", "config", "rotate", "filter", "transform":
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
			} else if u, _ := url.Parse(in.targetURL); u.User != nil {
				errs.Add("target_url", msgURLCredentials)
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
	if in.has["filter"] {
		if in.filter, in.pluginFilter, msg = decodeFilter(obj["filter"]); msg != "" {
			errs.Add("filter", msg)
		}
	}
	if in.has["transform"] {
		var nested map[string]any
		in.transform, nested, msg = decodeTransform(obj["transform"])
		switch {
		case msg != "":
			errs.Add("transform", msg)
		case nested != nil:
			errs.Set("transform", nested)
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
	if msg := checkJSONBounds(cfg.Kwargs, maxKwargsBytes); msg != "" {
		return cfg, map[string]any{"kwargs": []string{msg}}, ""
	}
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

// decodeHeaders reads additional_headers: an object of header names to
// string values that a delivery can send as they are. Names the sender
// would drop (webhook.ProtectedHeader) are refused, and so are two names
// that are one header to a receiver (webhook.HeaderKey): the sender would
// keep either.
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
	names := slices.Sorted(maps.Keys(obj)) // the first spelling of a name wins, always the same
	seen := make(map[string]string, len(obj))
	size := 0
	for _, name := range names {
		v := obj[name]
		key := webhook.HeaderKey(name)
		switch {
		case !webhook.ValidHeaderName(name):
			nested[name] = []string{fmt.Sprintf("%q is not a valid HTTP header name.", name)}
			continue
		case webhook.ProtectedHeader(name) && strings.Contains(name, "_"):
			nested[name] = []string{fmt.Sprintf("%q is read as %q by many servers, which is set by Whisperer "+
				"and cannot be replaced.", name, http.CanonicalHeaderKey(key))}
			continue
		case webhook.ProtectedHeader(name):
			nested[name] = []string{fmt.Sprintf("%q is set by Whisperer and cannot be replaced.", name)}
			continue
		case seen[key] != "":
			nested[name] = []string{fmt.Sprintf("%q is the same header as %q to a receiver "+
				"(names are compared ignoring case, with \"_\" as \"-\").", name, seen[key])}
			continue
		}
		seen[key] = name
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
		size += len(name) + len(val)
	}
	if len(nested) > 0 {
		return nil, nested, ""
	}
	if size > maxHeadersBytes {
		return nil, nil, msgHeadersBytes
	}
	return out, nil, ""
}

// decodeConfig reads config, a free-form object whose "auth" key, when
// present, must be basic auth credentials, and whose
// "rate_limit_per_second", when present, must be a positive number.
// needPassword reports an auth without a password.
func decodeConfig(raw json.RawMessage) (cfg map[string]any, nested map[string]any, needPassword bool, msg string) {
	if isNull(raw) {
		return map[string]any{}, nil, false, ""
	}
	if msg := checkJSONBounds(raw, maxConfigBytes); msg != "" {
		return nil, nil, false, msg
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

// checkJSONBounds says why the JSON value raw (valid: the body was) is too
// big to store: more than limit bytes compact, or nested deeper than
// maxJSONDepth. It reads raw's bytes only, allocating nothing per value.
func checkJSONBounds(raw json.RawMessage, limit int) string {
	size, maxDepth := webhook.JSONShape(raw)
	switch {
	case size > limit:
		return fmt.Sprintf("Ensure this value has no more than %d bytes as compact JSON (it has %d).", limit, size)
	case maxDepth > maxJSONDepth:
		return fmt.Sprintf("Ensure this value is nested no more than %d levels deep.", maxJSONDepth)
	}
	return ""
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

// msgReservedHook refuses a subscription to an operational event type by
// anyone but an admin or a publisher, for a hook of their own: the events
// tell of every tenant's hooks.
var msgReservedHook = fmt.Sprintf("Only admins and publishers may subscribe to Whisperer's operational events "+
	"(event types starting with %q), and only with hooks of their own.", webhook.OpsPrefix)

// checkReserved applies msgReservedHook to a hook of owner written by u.
func checkReserved(in *hookInput, u webhook.User, owner int64, errs *webhook.ValidationError) {
	if in.has["event_type"] && errs.Fields["event_type"] == nil && webhook.Reserved(in.eventType) &&
		(!u.Role.CanPublish() || owner != u.ID) {
		errs.Add("event_type", msgReservedHook)
	}
}

// check applies the rules that need the registries and the store: a known
// event type, a registered callback, a valid countdown, a target address
// deliveries may reach.
func (s *Server) check(ctx context.Context, in *hookInput, errs *webhook.ValidationError) error {
	s.checkTargetAddress(in, errs)
	if s.deps.AwaitsPlugins != nil {
		var cd, cb string
		if in.has["retry_countdown_config"] && errs.Fields["retry_countdown_config"] == nil {
			cd = in.countdown.Choice
		}
		if in.has["callback"] && errs.Fields["callback"] == nil {
			cb = in.callback
		}
		if s.deps.AwaitsPlugins(cd, cb) {
			return errPluginsLoading // may be a plugin's not compiled yet
		}
	}
	if s.deps.AwaitsExtensions != nil {
		var f, t string
		if in.pluginFilter != nil && errs.Fields["filter"] == nil {
			f, _ = in.pluginFilter.Plugin()
		}
		if in.transform != nil && errs.Fields["transform"] == nil {
			t = in.transform.Name
		}
		if s.deps.AwaitsExtensions(f, t) {
			return errPluginsLoading
		}
	}
	if in.pluginFilter != nil && errs.Fields["filter"] == nil {
		name, kwargs := in.pluginFilter.Plugin()
		var reg Kwargs
		if s.deps.Filters != nil {
			reg = s.deps.Filters
		}
		clean, nested := s.checkKwargs(ctx, reg, "filter", "plugin", name, kwargs)
		if nested == nil {
			// The cleaned kwargs may make the document one a stored filter
			// cannot be (a level deeper than filter.MaxDepth, say), which
			// fan-out could not compile: it would deliver every event.
			doc := in.pluginFilter.WithKwargs(clean).JSON()
			if f, err := filter.Parse(doc); err != nil {
				nested = map[string]any{"kwargs": []string{fmt.Sprintf(
					"The validator of filter %q returned kwargs that make the filter unusable: %v", name, err)}}
			} else {
				in.pluginFilter, in.filter = f, doc
			}
		}
		if nested != nil {
			errs.Set("filter", nested)
		}
	}
	if in.transform != nil && errs.Fields["transform"] == nil {
		clean, nested := s.checkKwargs(ctx, s.deps.Transforms, "transform", "name", in.transform.Name, in.transform.Kwargs)
		if nested != nil {
			errs.Set("transform", nested)
		} else {
			in.transform.Kwargs = clean
		}
	}
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
	if in.has["filter"] {
		w.Filter = in.filter
	}
	if in.has["transform"] {
		w.Transform = in.transform
	}
}

// checkKwargs judges a plugin filter's or a transform's name (the key
// field of kind) and kwargs against reg (nil: none is registered): the
// cleaned kwargs, or the nested errors for the field.
func (s *Server) checkKwargs(ctx context.Context, reg Kwargs, kind, field, name string, kwargs json.RawMessage) (json.RawMessage, map[string]any) {
	if reg == nil || !slices.Contains(reg.Keys(), name) {
		return nil, map[string]any{field: []string{choiceMsg(name)}}
	}
	// The client's kwargs have the bounds of a countdown's before any
	// validator sees them: a validator's output that breaks them is its
	// fault, not the client's.
	if msg := checkJSONBounds(kwargs, maxKwargsBytes); msg != "" {
		return nil, map[string]any{"kwargs": []string{msg}}
	}
	clean, fieldErrs, err := reg.Validate(ctx, name, kwargs)
	switch {
	case err != nil:
		// A validator that traps must not turn the request into a 500:
		// the kwargs are what it could not take.
		s.log.WarnContext(ctx, kind+" validator failed", kind, name, "error", err, "request_id", requestID(ctx))
		return nil, map[string]any{"kwargs": []string{fmt.Sprintf("The validator of %s %q failed on these kwargs.", kind, name)}}
	case len(fieldErrs) > 0:
		return nil, map[string]any{"kwargs": fieldErrs}
	}
	if msg := checkJSONBounds(clean, maxKwargsBytes); msg != "" || !isObject(clean) {
		s.log.WarnContext(ctx, kind+" validator returned unusable kwargs", kind, name, "request_id", requestID(ctx))
		return nil, map[string]any{"kwargs": []string{fmt.Sprintf("The validator of %s %q returned kwargs that cannot be stored.", kind, name)}}
	}
	return clean, nil
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{' && json.Valid(raw)
}

// decodeTransform reads a hook's transform: null (none) or exactly
// {"name": a transform's name, "kwargs": an object}; absent or null kwargs
// are {}, what the transform's validator then receives.
func decodeTransform(raw json.RawMessage) (*webhook.TransformConfig, map[string]any, string) {
	if isNull(raw) {
		return nil, nil, ""
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, map[string]any{"non_field_errors": []string{
			fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", pyType(raw))}}, ""
	}
	nested := map[string]any{}
	for k := range obj {
		if k != "name" && k != "kwargs" {
			nested[k] = []string{msgUnknownField}
		}
	}
	cfg := &webhook.TransformConfig{Kwargs: obj["kwargs"]}
	if n, ok := obj["name"]; !ok {
		nested["name"] = []string{msgRequired}
	} else if name, msg := decodeString(n, false, false, maxNameLen); msg != "" {
		nested["name"] = []string{msg}
	} else {
		cfg.Name = name
	}
	switch {
	case len(cfg.Kwargs) == 0 || isNull(cfg.Kwargs):
		cfg.Kwargs = json.RawMessage(`{}`)
	case !isObject(cfg.Kwargs):
		nested["kwargs"] = []string{fmt.Sprintf("Expected a dictionary of items but got type %q.", pyType(cfg.Kwargs))}
	default:
		if msg := checkJSONBounds(cfg.Kwargs, maxKwargsBytes); msg != "" {
			nested["kwargs"] = []string{msg}
		} else {
			var b bytes.Buffer
			_ = json.Compact(&b, cfg.Kwargs)
			cfg.Kwargs = b.Bytes()
		}
	}
	if len(nested) > 0 {
		return nil, nested, ""
	}
	return cfg, nil, ""
}

// decodeFilter checks a hook's filter: null (none) or a filter document
// (core/internal/filter), stored compact; plugin is its parse when it
// names a plugin filter, whose name and kwargs check judges.
func decodeFilter(raw json.RawMessage) (_ json.RawMessage, plugin *filter.Filter, msg string) {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil, ""
	}
	f, err := filter.Parse(raw)
	if err != nil {
		return nil, nil, err.Error()
	}
	if name, _ := f.Plugin(); name != "" {
		plugin = f
	}
	return f.JSON(), plugin, ""
}

func (s *Server) createHook(w http.ResponseWriter, r *http.Request) error {
	obj, err := s.readObject(w, r)
	if err != nil {
		return err
	}
	in, errs := decodeHook(obj, modeCreate)
	checkReserved(&in, user(r), user(r).ID, errs)
	if err := s.check(r.Context(), &in, errs); err != nil {
		return err
	}
	if err := errs.Err(); err != nil {
		return err
	}
	warnings := s.targetWarnings(r.Context(), &in)
	h := webhook.Webhook{UserID: user(r).ID, IsActive: true, RetryCountdown: s.cfg.DefaultRetryCountdown}
	in.apply(&h)
	h, err = s.insertHook(r.Context(), h)
	if errors.Is(err, webhook.ErrAlreadyExists) {
		return webhook.NewValidationError("non_field_errors", msgAlreadyRegistered)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, savedHook{renderHook(h, user(r).ID), warnings})
}

// insertHook stores h unless its user has HooksPerUser hooks already. The
// count and the insert hold the user's lock, so a burst of creations on
// one node cannot pass the limit; nodes sharing a PostgreSQL database each
// check on their own, so a burst spread over n nodes can pass it by n-1.
func (s *Server) insertHook(ctx context.Context, h webhook.Webhook) (webhook.Webhook, error) {
	mu := &s.hookLocks[uint64(h.UserID)%uint64(len(s.hookLocks))]
	mu.Lock()
	defer mu.Unlock()
	n, err := s.deps.Store.CountWebhooks(ctx, h.UserID)
	if err != nil {
		return webhook.Webhook{}, err
	}
	if n >= s.cfg.HooksPerUser {
		return webhook.Webhook{}, webhook.NewValidationError("non_field_errors", fmt.Sprintf(
			"You have %d webhooks, the most a user may have (limits.hooks_per_user). Deleted (inactive) "+
				"webhooks count too: change one with PUT or PATCH instead of registering another.", n))
	}
	return s.deps.Store.CreateWebhook(ctx, h)
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
	if h.SecretsError != "" && !in.has["secret_key"] {
		// Its secrets read as empty: writing them back would make the hook
		// deliver unsigned. Replacing secret_key (and with it the rest)
		// is the way to repair it.
		return &webhook.ConflictError{Detail: "This hook's stored secrets cannot be decrypted; send a new secret_key " +
			"(and additional_headers and config.auth, if it had them) to replace them."}
	}
	if in.needPassword {
		if old, ok := h.BasicAuth(); ok {
			in.config["auth"].(map[string]any)["password"] = old.Password
		} else {
			errs.Set("config", map[string]any{"auth": map[string]any{"password": []string{msgRequired}}})
		}
	}
	if h.UserID != user(r).ID && in.has["additional_headers"] && errs.Fields["additional_headers"] == nil {
		keepHiddenHeaders(in.headers, h.AdditionalHeaders, errs)
	}
	checkReserved(&in, user(r), h.UserID, errs)
	if err := s.check(r.Context(), &in, errs); err != nil {
		return err
	}
	if err := errs.Err(); err != nil {
		return err
	}
	warnings := s.targetWarnings(r.Context(), &in)
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
	return writeJSON(w, http.StatusOK, savedHook{renderHook(h, user(r).ID), warnings})
}

// keepHiddenHeaders puts back the stored value of each header sent as
// hiddenHeaderValue by a viewer who was shown it, so a GET → PUT round
// trip cannot overwrite a secret with the placeholder; the placeholder
// for a header the hook lacks is refused.
func keepHiddenHeaders(sent, stored map[string]string, errs *webhook.ValidationError) {
	nested := map[string]any{}
	for name, v := range sent {
		if v != hiddenHeaderValue {
			continue
		}
		if old, ok := stored[name]; ok {
			sent[name] = old
		} else {
			nested[name] = []string{msgHiddenHeader}
		}
	}
	if len(nested) > 0 {
		errs.Set("additional_headers", nested)
		return
	}
	size := 0 // decodeHeaders counted the placeholders
	for name, v := range sent {
		size += len(name) + len(v)
	}
	if size > maxHeadersBytes {
		errs.Add("additional_headers", msgHeadersBytes)
	}
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
	return listPage(s, w, r,
		func(ctx context.Context, sc webhook.Scope, p webhook.Page) ([]int64, webhook.PageInfo, error) {
			return s.deps.Store.WebhookIDs(ctx, sc, f, p)
		},
		hookChunk, s.deps.Store.WebhooksByID, func(h webhook.Webhook, viewer int64) any { return renderHook(h, viewer) })
}

// hookJSON is a hook as dj-whisperer's WebhookSerializer writes it, in its
// field order.
type hookJSON struct {
	ID                   int64                   `json:"id"`
	TargetURL            string                  `json:"target_url"`
	EventType            string                  `json:"event_type"`
	SecretKey            **string                `json:"secret_key,omitempty"` // see renderHook
	IsActive             bool                    `json:"is_active"`
	Callback             *string                 `json:"callback"` // null when unset, as dj-whisperer's nullable column
	RetryCountdownConfig webhook.CountdownConfig `json:"retry_countdown_config"`
	AdditionalHeaders    map[string]string       `json:"additional_headers"`
	Config               map[string]any          `json:"config"`
	CreatedDate          string                  `json:"created_date"`
	ModifiedDate         string                  `json:"modified_date"`
	// DisabledReason and DisabledAt are Whisperer's: why and when the hook
	// became inactive ("" and null while active). Read-only.
	DisabledReason string  `json:"disabled_reason"`
	DisabledAt     *string `json:"disabled_at"`
	// Filter is Whisperer's declarative event filter (docs/API.md,
	// "Filters"); null delivers every event of the type.
	Filter json.RawMessage `json:"filter"`
	// Transform is the plugin transform run on each attempt's request
	// before it is signed (docs/PLUGINS.md, "Transforms"); null for none.
	Transform *webhook.TransformConfig `json:"transform"`
}

// renderHook writes h for viewer (a user id). config.auth.password is
// write-only and left out. secret_key is shown to the hook's owner only
// (dj-whisperer returns it to its owner); for anyone else (an admin) the
// field is left out, so an admin's GET → PUT round trip keeps it, and the
// additional_headers values are hiddenHeaderValue. A target_url with
// credentials (from an older release) is shown without them.
func renderHook(h webhook.Webhook, viewer int64) hookJSON {
	cfg := h.ShownConfig()
	headers := h.AdditionalHeaders
	if h.UserID != viewer {
		headers = make(map[string]string, len(h.AdditionalHeaders))
		for k := range h.AdditionalHeaders {
			headers[k] = hiddenHeaderValue
		}
	}
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
	// secret_key: left out for anyone but the owner and when unreadable
	// (never shown as null or ""); null when the hook has none, as
	// dj-whisperer's nullable column answers.
	var secret **string // nil: left out; *secret nil: null
	if h.UserID == viewer && h.SecretsError == "" {
		secret = new(*string)
		if h.SecretKey != "" {
			*secret = &h.SecretKey
		}
	}
	var callback *string
	if h.Callback != "" {
		callback = &h.Callback
	}
	return hookJSON{
		ID: h.ID, TargetURL: webhook.RedactURL(h.TargetURL), EventType: h.EventType, SecretKey: secret,
		IsActive: h.IsActive, Callback: callback, RetryCountdownConfig: cd,
		AdditionalHeaders: headers, Config: cfg,
		CreatedDate: formatTime(h.CreatedAt), ModifiedDate: formatTime(h.ModifiedAt),
		DisabledReason: h.DisabledReason, DisabledAt: disabledAt,
		Filter: orNull(h.Filter), Transform: h.Transform,
	}
}

// orNull is raw, or JSON null when empty.
func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

// formatTime writes t as DRF does, in UTC with a Z, always with
// microseconds so every timestamp has one shape.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}
