// Command transform is a Whisperer transform plugin that turns any event
// into a chat message for a Slack or Discord incoming webhook:
// {"text": "<template rendered>"}.
//
// A hook names it with
//
//	"transform": {"name": "chat", "kwargs": {"template": "{event_type}: {payload.name}", "key": "text"}}
//
// kwargs: "template" (default "{event_type} event {uuid}") with the
// placeholders {event_type}, {uuid}, {hook_id}, {retry_count}, {url},
// {payload} (the payload's JSON) and {payload.NAME} (a top-level payload
// member: a string as its text, anything else as JSON, missing as
// nothing); "key", the message's field (default "text"; Discord wants
// "content"). An unknown placeholder is refused when the hook is saved.
//
// Build it into the plugin directory:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugins/transform.wasm ./examples/transform
package main

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/whisperer/whisperer/sdk"
)

const defaultTemplate = "{event_type} event {uuid}"

var rules = sdk.Rules{
	"template": sdk.String().MaxLen(2000).Default(defaultTemplate),
	"key":      sdk.String().MaxLen(100).Default("text"),
}

func init() {
	sdk.SetName("chat-transform")
	// Prepared: a hook sends the same kwargs on every attempt, so the
	// template is cut into its parts once per kwargs, not on every call.
	sdk.RegisterPreparedTransform("chat", compile, Chat, sdk.ValidatorFunc(validate))
}

// validate applies the rules, then refuses placeholders Chat does not know.
func validate(kw sdk.Kwargs) (sdk.Kwargs, sdk.Errors) {
	clean, errs := rules.Validate(kw)
	if errs != nil {
		return nil, errs
	}
	tmpl := clean.String("template")
	for rest := tmpl; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			break
		}
		name := rest[i+1 : i+j]
		if !known(name) {
			return nil, sdk.Errors{"template": {"Unknown placeholder {" + name + "}."}}
		}
		rest = rest[i+j+1:]
	}
	return clean, nil
}

func known(name string) bool {
	switch name {
	case "event_type", "uuid", "hook_id", "retry_count", "url", "payload":
		return true
	}
	return strings.HasPrefix(name, "payload.") && len(name) > len("payload.")
}

// message is one hook's kwargs, compiled: the body's opening {"<key>":
// and the template cut at its placeholders.
type message struct {
	open  []byte
	parts []part
}

// part is literal text followed by a placeholder (none for the last).
type part struct {
	lit   string
	value value
	field string // the member of {payload.NAME}
}

type value int

const (
	none value = iota
	eventType
	uuid
	hookID
	retryCount
	url
	payload
	payloadField
)

var values = map[string]value{"event_type": eventType, "uuid": uuid, "hook_id": hookID,
	"retry_count": retryCount, "url": url, "payload": payload}

// compile reads the kwargs into a message; an unknown placeholder (kwargs
// no validator checked) is kept as text.
func compile(kw sdk.Kwargs) (*message, error) {
	tmpl := kw.String("template")
	if !kw.Has("template") {
		tmpl = defaultTemplate
	}
	key := kw.String("key")
	if key == "" {
		key = "text"
	}
	m := &message{open: append(sdk.AppendJSONString([]byte{'{'}, key), ':')}
	lit := ""
	for {
		i := strings.IndexByte(tmpl, '{')
		j := -1
		if i >= 0 {
			j = strings.IndexByte(tmpl[i:], '}')
		}
		if j < 0 {
			m.parts = append(m.parts, part{lit: lit + tmpl})
			return m, nil
		}
		name := tmpl[i+1 : i+j]
		p := part{lit: lit + tmpl[:i], value: values[name]}
		if field, ok := strings.CutPrefix(name, "payload."); ok {
			p.value, p.field = payloadField, field
		}
		if p.value == none {
			lit = p.lit + "{" + name + "}"
		} else {
			m.parts = append(m.parts, p)
			lit = ""
		}
		tmpl = tmpl[i+j+1:]
	}
}

// text and body are Chat's buffers, reused: the SDK copies the body into
// its result before the next call, and an allocation per call costs a
// guest (sdk/ABI.md §8, Performance).
var text, body []byte

// Chat renders the template into {"<key>": "<text>"}.
func Chat(m *message, req *sdk.Request) (sdk.Result, error) {
	t := text[:0]
	for _, p := range m.parts {
		t = append(t, p.lit...)
		t = appendValue(t, p, req)
	}
	b := append(body[:0], m.open...)
	b = sdk.AppendJSONBytes(b, t)
	b = append(b, '}')
	text, body = t, b
	return sdk.Result{Body: b, BodyJSON: true}, nil
}

func appendValue(b []byte, p part, req *sdk.Request) []byte {
	switch p.value {
	case eventType:
		return append(b, req.EventType...)
	case uuid:
		return append(b, req.UUID...)
	case hookID:
		return strconv.AppendInt(b, req.HookID, 10)
	case retryCount:
		return strconv.AppendInt(b, int64(req.RetryCount), 10)
	case url:
		return append(b, req.URL...)
	case payload:
		return append(b, req.Payload...)
	case payloadField:
	default:
		return b
	}
	v, ok := req.Field(p.field)
	switch {
	case !ok:
		return b
	case len(v) >= 2 && v[0] == '"' && bytes.IndexByte(v, '\\') < 0:
		// A string without escapes is its bytes between the quotes.
		return append(b, v[1:len(v)-1]...)
	}
	if s, ok := sdk.Unquote(v); ok {
		return append(b, s...)
	}
	return append(b, v...)
}

// main is empty: built with -buildmode=c-shared the module is a WASI
// reactor that the host calls through the SDK's exports.
func main() {}
