package console

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The hook form writes through the API (POST hooks/, PATCH hooks/{id}/),
// so every rule is the API's; the console only turns form fields into the
// JSON body and the API's DRF error document back into messages next to
// the fields.

// kwargField is one input of a built-in countdown's kwargs form.
type kwargField struct {
	Name, Help string
	Required   bool
	Value      string
}

// builtinKwargs are the built-in countdowns' kwargs (core/internal/countdown):
// integers of seconds. A plugin's countdown gets a JSON text area instead.
var builtinKwargs = map[string][]kwargField{
	"fixed":       {{Name: "seconds", Help: "seconds between attempts", Required: true}},
	"linear":      {{Name: "base", Help: "base × retries seconds", Required: true}, {Name: "limit", Help: "at most this many seconds (optional)"}},
	"exponential": {{Name: "base", Help: "base ^ retries seconds", Required: true}, {Name: "limit", Help: "at most this many seconds (optional)"}},
	"random":      {{Name: "min_value", Help: "at least, in seconds", Required: true}, {Name: "max_value", Help: "at most, in seconds", Required: true}},
}

// maxKwargsText bounds the kwargs a preview reads: the API's own bound on
// retry_countdown_config.kwargs.
const maxKwargsText = 4 << 10

// fieldErrors are error messages by dotted field path, as the API's DRF
// error document nests them: "target_url",
// "retry_countdown_config.kwargs.seconds", "additional_headers.X-Key".
type fieldErrors map[string][]string

// Of is the messages of exactly path.
func (e fieldErrors) Of(path string) []string { return e[path] }

// Under is the messages of path and below it, each prefixed with the
// rest of its path ("seconds: …").
func (e fieldErrors) Under(path string) []string {
	var out []string
	for _, k := range slices.Sorted(mapKeys(e)) {
		switch {
		case k == path:
			out = append(out, e[k]...)
		case strings.HasPrefix(k, path+"."):
			for _, m := range e[k] {
				out = append(out, strings.TrimPrefix(k, path+".")+": "+m)
			}
		}
	}
	return out
}

// All is every message, "path: message", for the summary at the top.
func (e fieldErrors) All() []string {
	var out []string
	for _, k := range slices.Sorted(mapKeys(e)) {
		for _, m := range e[k] {
			if k == "non_field_errors" || k == "detail" {
				out = append(out, m)
			} else {
				out = append(out, k+": "+m)
			}
		}
	}
	return out
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (e fieldErrors) add(path, msg string) { e[path] = append(e[path], msg) }

// flattenErrors reads a DRF error document into e.
func (e fieldErrors) flatten(path string, v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			p := k
			if path != "" {
				p = path + "." + k
			}
			e.flatten(p, x)
		}
	case []any:
		for _, x := range v {
			e.flatten(path, x)
		}
	case string:
		e.add(cmpOr(path, "non_field_errors"), v)
	default:
		e.add(cmpOr(path, "non_field_errors"), fmt.Sprint(v))
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// choiceOption is a countdown in the form's select.
type choiceOption struct {
	Key, Source string
}

// countdownForm is the countdown part of the hook form, also served alone
// when the choice changes (GET /hooks/countdown).
type countdownForm struct {
	Choice  string
	Choices []choiceOption
	// Builtin countdowns have Kwargs fields; the others KwargsJSON.
	Builtin    bool
	Kwargs     []kwargField
	KwargsJSON string
	Errors     fieldErrors
	Preview    previewData
}

type headerRow struct{ Name, Value string }

// hookForm is the create and edit form.
type hookForm struct {
	// ID is 0 for a new hook.
	ID                   int64
	TargetURL, EventType string
	// Secret is the signing secret of a new hook (an edit rotates it on a
	// page of its own).
	Secret    string
	IsActive  bool
	Callback  string
	Callbacks []string
	Countdown countdownForm
	Headers   []headerRow
	// AuthUser is config.auth's username; its password is write-only:
	// never rendered, HasPassword says there is one.
	AuthUser    string
	HasPassword bool
	// Config is config without auth, as JSON.
	Config string
	// Filter is a declarative filter as JSON ("" for none); FilterPlugin
	// a plugin filter's name instead, with FilterKwargs (JSON).
	Filter                     string
	FilterPlugin, FilterKwargs string
	FilterPlugins              []string
	// Transform is the transform's name ("" for none), with
	// TransformKwargs (JSON).
	Transform, TransformKwargs string
	Transforms                 []string
	// EventTypes are the registered types the event type field offers.
	EventTypes []string
	Errors     fieldErrors
	CSRF       string
}

// eventTypes is what the form offers for a hook of owner: the registered
// event types, without the operational ones (webhook.Reserved) unless the
// session's user may subscribe to them with it, the API's rule: an admin
// or a publisher, with a hook of their own.
func (h *Handler) eventTypes(r *http.Request, rq *request, owner int64) ([]string, error) {
	names, err := h.deps.Store.EventTypes(r.Context())
	if err != nil {
		return nil, err
	}
	u := rq.sess.User
	if u.Role.CanPublish() && owner == u.ID {
		return names, nil
	}
	return slices.DeleteFunc(names, webhook.Reserved), nil
}

// registered is reg's keys plus current when reg lacks it (a plugin gone).
func registered(reg Callbacks, current string) []string {
	var out []string
	if reg != nil {
		out = reg.Keys()
	}
	if current != "" && !slices.Contains(out, current) {
		out = append(out, current)
	}
	return out
}

// setExtensions fills f's filter and transform fields from a stored hook.
func (h *Handler) setExtensions(f *hookForm, filter json.RawMessage, tf *webhook.TransformConfig) {
	var plugin struct {
		Plugin *string         `json:"plugin"`
		Kwargs json.RawMessage `json:"kwargs"`
	}
	if len(filter) > 0 && json.Unmarshal(filter, &plugin) == nil && plugin.Plugin != nil {
		f.FilterPlugin, f.FilterKwargs = *plugin.Plugin, pretty(plugin.Kwargs)
	} else if len(filter) > 0 {
		f.Filter = pretty(filter)
	}
	if tf != nil {
		f.Transform, f.TransformKwargs = tf.Name, pretty(tf.Kwargs)
	}
	f.FilterPlugins = registered(h.deps.Filters, f.FilterPlugin)
	f.Transforms = registered(h.deps.Transforms, f.Transform)
}

// extensionsBody reads the filter and transform fields into the API's
// body: a plugin filter when one is chosen, else the declarative filter
// (null when empty); the transform (null for none). Text that is not
// JSON is passed on as a string, for the API to refuse next to its field;
// the API bounds every size.
func (f *hookForm) extensionsBody(r *http.Request, body map[string]any) {
	f.Filter = r.PostFormValue("filter")
	f.FilterPlugin = r.PostFormValue("filter_plugin")
	f.FilterKwargs = r.PostFormValue("filter_kwargs")
	f.Transform = r.PostFormValue("transform")
	f.TransformKwargs = r.PostFormValue("transform_kwargs")
	asJSON := func(text string) any {
		text = strings.TrimSpace(text)
		if text == "" {
			return nil
		}
		if json.Valid([]byte(text)) {
			return json.RawMessage(text)
		}
		return text
	}
	switch {
	case f.FilterPlugin != "":
		body["filter"] = map[string]any{"plugin": f.FilterPlugin, "kwargs": asJSON(f.FilterKwargs)}
	default:
		body["filter"] = asJSON(f.Filter)
	}
	body["transform"] = nil
	if f.Transform != "" {
		body["transform"] = map[string]any{"name": f.Transform, "kwargs": asJSON(f.TransformKwargs)}
	}
}

// blankHeaderRows are the empty header rows the form always offers.
const blankHeaderRows = 3

// countdownChoices lists the registered countdowns, built-ins first.
func (h *Handler) countdownChoices() []choiceOption {
	if h.deps.Countdowns == nil {
		return nil
	}
	var out []choiceOption
	for _, k := range h.deps.Countdowns.Keys() {
		out = append(out, choiceOption{Key: k, Source: h.deps.Countdowns.Source(k)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Source == "builtin" && out[j].Source != "builtin" })
	return out
}

func (h *Handler) isBuiltin(choice string) bool {
	_, known := builtinKwargs[choice]
	return known && (h.deps.Countdowns == nil || h.deps.Countdowns.Source(choice) == "builtin")
}

// countdownFormOf fills the countdown part from the choice and the kwargs
// as the form sent them (q) or as stored (kwargs, when q is nil).
func (h *Handler) countdownFormOf(choice string, q url.Values, stored json.RawMessage) countdownForm {
	f := countdownForm{Choice: choice, Choices: h.countdownChoices(), Builtin: h.isBuiltin(choice), Errors: fieldErrors{}}
	if choice != "" && !slices.ContainsFunc(f.Choices, func(c choiceOption) bool { return c.Key == choice }) {
		// A plugin that is gone: keep the hook's choice selectable.
		f.Choices = append(f.Choices, choiceOption{Key: choice, Source: "not registered"})
	}
	var storedVals map[string]json.RawMessage
	if q == nil {
		_ = json.Unmarshal(stored, &storedVals)
	}
	if f.Builtin {
		for _, k := range builtinKwargs[choice] {
			if q != nil {
				k.Value = q.Get("kw." + k.Name)
			} else if v, ok := storedVals[k.Name]; ok && string(v) != "null" {
				k.Value = strings.Trim(string(v), `"`)
			}
			f.Kwargs = append(f.Kwargs, k)
		}
	} else if q != nil {
		f.KwargsJSON = q.Get("kwargs")
	} else if len(stored) > 0 {
		f.KwargsJSON = pretty(stored)
	}
	return f
}

// kwargs builds the kwargs JSON from the form: a built-in countdown's
// fields as integers when they read as one (else as the text, for the
// validator to refuse), a plugin's text area as it is. nil means none
// were given, or msg says why the text area is not JSON.
func (f *countdownForm) kwargs() (_ json.RawMessage, msg string) {
	if f.Builtin {
		obj := map[string]any{}
		for _, k := range f.Kwargs {
			v := strings.TrimSpace(k.Value)
			if v == "" {
				continue
			}
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				obj[k.Name] = n
			} else {
				obj[k.Name] = v
			}
		}
		b, _ := json.Marshal(obj)
		return b, ""
	}
	text := strings.TrimSpace(f.KwargsJSON)
	switch {
	case text == "":
		return nil, ""
	case len(text) > maxKwargsText:
		return nil, fmt.Sprintf("Enter at most %d bytes of JSON.", maxKwargsText)
	case !json.Valid([]byte(text)):
		return nil, `Enter a JSON object, like {"factor": 2}.`
	}
	return json.RawMessage(text), ""
}

func (h *Handler) callbackNames(current string) []string {
	return registered(h.deps.Callbacks, current)
}

// newSecret is a fresh signing secret for a new hook or a rotation.
func newSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (h *Handler) newHookPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	f := hookForm{IsActive: true, Secret: newSecret(), CSRF: rq.sess.CSRF, Errors: fieldErrors{}}
	choice := "exponential"
	if h.deps.Countdowns != nil && h.deps.Countdowns.Source(choice) == "" {
		choice = ""
	}
	f.Countdown = h.countdownFormOf(choice, nil, json.RawMessage(`{"base": 2}`))
	f.Countdown.Preview = h.schedule(r, &f.Countdown)
	f.Callbacks = h.callbackNames("")
	f.Headers = make([]headerRow, blankHeaderRows)
	f.Config = "{}"
	h.setExtensions(&f, nil, nil)
	var err error
	if f.EventTypes, err = h.eventTypes(r, rq, rq.sess.User.ID); err != nil {
		return err
	}
	h.render(w, r, rq, http.StatusOK, "hookform", "New hook", f)
	return nil
}

func (h *Handler) editHookPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	hk, err := h.pathHook(r, rq)
	if err != nil {
		return err
	}
	f := hookForm{ID: hk.ID, TargetURL: hk.TargetURL, EventType: hk.EventType, IsActive: hk.IsActive,
		Callback: hk.Callback, CSRF: rq.sess.CSRF, Errors: fieldErrors{}}
	f.Callbacks = h.callbackNames(hk.Callback)
	f.Countdown = h.countdownFormOf(hk.RetryCountdown.Choice, nil, hk.RetryCountdown.Kwargs)
	f.Countdown.Preview = h.schedule(r, &f.Countdown)
	for k, v := range hk.AdditionalHeaders {
		if hk.UserID != rq.sess.User.ID {
			v = hiddenHeaderValue // the API keeps the stored value when it comes back
		}
		f.Headers = append(f.Headers, headerRow{k, v})
	}
	slices.SortFunc(f.Headers, func(a, b headerRow) int { return strings.Compare(a.Name, b.Name) })
	f.Headers = append(f.Headers, make([]headerRow, blankHeaderRows)...)
	cfg := make(map[string]any, len(hk.Config))
	for k, v := range hk.Config {
		cfg[k] = v
	}
	if auth, ok := cfg["auth"].(map[string]any); ok {
		f.AuthUser, _ = auth["username"].(string)
		p, _ := auth["password"].(string)
		f.HasPassword = p != ""
		delete(cfg, "auth")
	}
	b, _ := json.Marshal(cfg)
	f.Config = pretty(b)
	h.setExtensions(&f, hk.Filter, hk.Transform)
	if f.EventTypes, err = h.eventTypes(r, rq, hk.UserID); err != nil {
		return err
	}
	h.render(w, r, rq, http.StatusOK, "hookform", fmt.Sprintf("Edit hook %d", hk.ID), f)
	return nil
}

// hiddenHeaderValue is the API's stand-in for a header value hidden from
// anyone but the hook's owner; sent back, it keeps the stored value.
const hiddenHeaderValue = "********"

// readHookForm reads the posted form into f and the API's JSON body.
// Errors the console finds itself (JSON that does not parse, a header
// named twice) are in f.Errors, and body is nil.
func (h *Handler) readHookForm(r *http.Request, f *hookForm, create bool) []byte {
	f.Errors = fieldErrors{}
	f.TargetURL = r.PostFormValue("target_url")
	f.EventType = r.PostFormValue("event_type")
	f.Secret = r.PostFormValue("secret_key")
	f.IsActive = r.PostFormValue("is_active") == "yes"
	f.Callback = r.PostFormValue("callback")
	f.Callbacks = h.callbackNames(f.Callback)
	f.Countdown = h.countdownFormOf(r.PostFormValue("choice"), r.PostForm, nil)
	f.AuthUser = r.PostFormValue("auth_username")
	f.Config = r.PostFormValue("config")
	body := map[string]any{
		"target_url": f.TargetURL, "event_type": f.EventType, "is_active": f.IsActive,
		"callback": nil,
	}
	if f.Callback != "" {
		body["callback"] = f.Callback
	}
	if create && f.Secret != "" {
		body["secret_key"] = f.Secret
	}
	cd := map[string]any{"choice": f.Countdown.Choice}
	kw, msg := f.Countdown.kwargs()
	if kw != nil {
		cd["kwargs"] = kw
	}
	if msg != "" {
		f.Errors.add("retry_countdown_config.kwargs", msg)
	}
	body["retry_countdown_config"] = cd
	headers := map[string]string{}
	names, values := r.PostForm["header_name"], r.PostForm["header_value"]
	for i, name := range names {
		name = strings.TrimSpace(name)
		val := ""
		if i < len(values) {
			val = values[i]
		}
		if name == "" && val == "" {
			continue
		}
		f.Headers = append(f.Headers, headerRow{name, val})
		if _, dup := headers[name]; dup {
			f.Errors.add("additional_headers."+name, "This header is named twice.")
		}
		headers[name] = val
	}
	f.Headers = append(f.Headers, make([]headerRow, blankHeaderRows)...)
	body["additional_headers"] = headers
	cfg := map[string]any{}
	if text := strings.TrimSpace(f.Config); text != "" {
		dec := json.NewDecoder(strings.NewReader(text))
		dec.UseNumber()
		if err := dec.Decode(&cfg); err != nil || cfg == nil || dec.More() {
			f.Errors.add("config", `Enter a JSON object, like {"rate_limit_per_second": 5} or {}.`)
		}
	}
	if f.AuthUser != "" || r.PostFormValue("auth_password") != "" {
		auth := map[string]any{"auth_type": "basic", "username": f.AuthUser}
		if p := r.PostFormValue("auth_password"); p != "" {
			auth["password"] = p
		}
		cfg["auth"] = auth
	}
	body["config"] = cfg
	f.extensionsBody(r, body)
	f.FilterPlugins = registered(h.deps.Filters, f.FilterPlugin)
	f.Transforms = registered(h.deps.Transforms, f.Transform)
	if len(f.Errors) > 0 {
		return nil
	}
	b, _ := json.Marshal(body)
	return b
}

// submitHook sends the form's body; a refusal re-renders the form with
// the API's messages next to their fields.
func (h *Handler) submitHook(w http.ResponseWriter, r *http.Request, rq *request, f *hookForm, method, path, title string, body []byte) ([]byte, bool, error) {
	if body != nil {
		answer, err := h.apiDo(r, rq, method, path, body)
		var fe *apiFieldErrors
		if !errors.As(err, &fe) {
			return answer, err == nil, err
		}
		var doc any
		if json.Unmarshal(fe.body, &doc) != nil {
			doc = map[string]any{"non_field_errors": []any{"The API refused the hook (" + strconv.Itoa(fe.status) + ")."}}
		}
		f.Errors.flatten("", doc)
	}
	f.Countdown.Errors = f.Errors
	f.CSRF = rq.sess.CSRF
	f.Countdown.Preview = h.schedule(r, &f.Countdown)
	owner := rq.sess.User.ID
	if f.ID != 0 {
		hk, err := h.pathHook(r, rq)
		if err != nil {
			return nil, false, err
		}
		owner = hk.UserID
	}
	var err error
	if f.EventTypes, err = h.eventTypes(r, rq, owner); err != nil {
		return nil, false, err
	}
	h.render(w, r, rq, http.StatusBadRequest, "hookform", title, f)
	return nil, false, nil
}

func (h *Handler) createHook(w http.ResponseWriter, r *http.Request, rq *request) error {
	f := &hookForm{}
	body := h.readHookForm(r, f, true)
	answer, ok, err := h.submitHook(w, r, rq, f, http.MethodPost, "hooks/", "New hook", body)
	if !ok {
		return err
	}
	var created struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(answer, &created); err != nil || created.ID == 0 {
		return fmt.Errorf("console: the API's answer to a hook creation has no id: %w", err)
	}
	http.Redirect(w, r, withTenant(fmt.Sprintf("/hooks/%d?done=created", created.ID), rq), http.StatusSeeOther)
	return nil
}

func (h *Handler) editHook(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		return errNotFound
	}
	f := &hookForm{ID: id}
	body := h.readHookForm(r, f, false)
	if _, ok, err := h.submitHook(w, r, rq, f, http.MethodPatch, fmt.Sprintf("hooks/%d/", id), fmt.Sprintf("Edit hook %d", id), body); !ok {
		return err
	}
	http.Redirect(w, r, withTenant(fmt.Sprintf("/hooks/%d?done=saved", id), rq), http.StatusSeeOther)
	return nil
}

// countdownFields is GET /hooks/countdown?choice=…: the kwargs form of
// the chosen countdown and its preview, swapped in by htmx when the
// choice changes.
func (h *Handler) countdownFields(w http.ResponseWriter, r *http.Request, rq *request) error {
	choice, err := boundedText(r.URL.Query(), "choice", 255)
	if err != nil {
		return err
	}
	f := h.countdownFormOf(choice, nil, nil)
	f.Preview = h.schedule(r, &f)
	return h.fragment(w, r, "countdown-body", f)
}

// preview is GET /hooks/preview: the schedule of the countdown as the
// form holds it, swapped in by htmx as the user types.
func (h *Handler) preview(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	choice, err := boundedText(q, "choice", 255)
	if err != nil {
		return err
	}
	f := h.countdownFormOf(choice, q, nil)
	return h.fragment(w, r, "preview", h.schedule(r, &f))
}

// fragment renders one template of the hook form alone, for htmx.
func (h *Handler) fragment(w http.ResponseWriter, r *http.Request, name string, data any) error {
	var buf bytes.Buffer
	if err := h.pages["hookform"].ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = buf.WriteTo(w)
	return nil
}

// tryData is the "try it" panel's answer: the API's dry run, or the
// messages of its refusal.
type tryData struct {
	Result *tryResult
	Errors []string
}

type tryResult struct {
	Deliver     bool    `json:"deliver"`
	Reason      string  `json:"reason"`
	FilteredBy  *string `json:"filtered_by"`
	FilterError *string `json:"filter_error"`
	Transform   *struct {
		Name      string  `json:"name"`
		Cancelled bool    `json:"cancelled"`
		Error     *string `json:"error"`
	} `json:"transform"`
	Request *struct {
		Method  string              `json:"method"`
		URL     string              `json:"url"`
		Headers map[string][]string `json:"headers"`
		Body    string              `json:"body"`
	} `json:"request"`
}

// maxTryPayload bounds the payload the panel sends: the API's body limit
// refuses more anyway.
const maxTryPayload = 64 << 10

// tryHook is POST /hooks/{id}/try: the API's dry run (POST
// hooks/{id}/test/) of the panel's event type and payload against the
// saved hook, rendered for htmx. Nothing is sent and no row is written.
func (h *Handler) tryHook(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		return errNotFound
	}
	var d tryData
	payload := strings.TrimSpace(r.PostFormValue("try_payload"))
	switch {
	case payload == "":
		d.Errors = []string{"payload: Enter the event's payload as JSON."}
	case len(payload) > maxTryPayload:
		d.Errors = []string{fmt.Sprintf("payload: Enter at most %d bytes of JSON.", maxTryPayload)}
	case !json.Valid([]byte(payload)):
		d.Errors = []string{"payload: Not valid JSON."}
	}
	if d.Errors == nil {
		body := map[string]any{"payload": json.RawMessage(payload)}
		if et := strings.TrimSpace(r.PostFormValue("try_event_type")); et != "" {
			body["event_type"] = et
		}
		b, _ := json.Marshal(body)
		answer, err := h.apiDo(r, rq, http.MethodPost, fmt.Sprintf("hooks/%d/test/", id), b)
		var fe *apiFieldErrors
		switch {
		case errors.As(err, &fe):
			d.Errors = []string{apiMessage(fe.body)}
		case err != nil:
			return err
		default:
			d.Result = &tryResult{}
			if err := json.Unmarshal(answer, d.Result); err != nil {
				return fmt.Errorf("console: the dry run's answer: %w", err)
			}
		}
	}
	return h.fragment(w, r, "try-result", d)
}

type rotateData struct {
	Hook   hookRow
	Secret string
	CSRF   string
}

func (h *Handler) confirmRotate(w http.ResponseWriter, r *http.Request, rq *request) error {
	hk, err := h.pathHook(r, rq)
	if err != nil {
		return err
	}
	h.render(w, r, rq, http.StatusOK, "rotate", "Rotate the signing secret?", rotateData{
		Hook: h.hookView(hk, rq.sess.User.ID, nil), Secret: newSecret(), CSRF: rq.sess.CSRF})
	return nil
}

// rotate is PATCH hooks/{id}/ {"secret_key": new, "rotate": keep} through
// the API: with keep, the old secret signs beside the new one for
// security.secret_rotation_overlap.
func (h *Handler) rotate(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		return errNotFound
	}
	body, _ := json.Marshal(map[string]any{"secret_key": r.PostFormValue("secret_key"), "rotate": r.PostFormValue("keep_old") == "yes"})
	if err := h.callAPI(r, rq, http.MethodPatch, fmt.Sprintf("hooks/%d/", id), body); err != nil {
		return err
	}
	http.Redirect(w, r, withTenant(fmt.Sprintf("/hooks/%d?done=rotated", id), rq), http.StatusSeeOther)
	return nil
}
