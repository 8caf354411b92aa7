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
	sdk.RegisterTransform("chat", Chat, sdk.ValidatorFunc(validate))
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

// Chat renders the template into {"<key>": "<text>"}.
func Chat(kw sdk.Kwargs, req *sdk.Request) (sdk.Result, error) {
	tmpl := kw.String("template")
	if !kw.Has("template") {
		tmpl = defaultTemplate
	}
	key := kw.String("key")
	if key == "" {
		key = "text"
	}
	text := render(make([]byte, 0, len(tmpl)+64), tmpl, req)
	body := make([]byte, 0, len(text)+len(key)+16)
	body = append(body, '{')
	body = sdk.AppendJSONString(body, key)
	body = append(body, ':')
	body = sdk.AppendJSONString(body, string(text))
	body = append(body, '}')
	return sdk.Result{Body: body, BodyJSON: true}, nil
}

// render appends tmpl to b with each {placeholder} replaced; plain
// appends, not fmt, text/template or a strings.Builder: each call and
// allocation costs a guest (sdk/ABI.md §8, Performance).
func render(b []byte, tmpl string, req *sdk.Request) []byte {
	for {
		i := strings.IndexByte(tmpl, '{')
		j := -1
		if i >= 0 {
			j = strings.IndexByte(tmpl[i:], '}')
		}
		if j < 0 {
			return append(b, tmpl...)
		}
		b = append(b, tmpl[:i]...)
		b = appendValue(b, tmpl[i+1:i+j], req)
		tmpl = tmpl[i+j+1:]
	}
}

func appendValue(b []byte, name string, req *sdk.Request) []byte {
	switch name {
	case "event_type":
		return append(b, req.EventType...)
	case "uuid":
		return append(b, req.UUID...)
	case "hook_id":
		return strconv.AppendInt(b, req.HookID, 10)
	case "retry_count":
		return strconv.AppendInt(b, int64(req.RetryCount), 10)
	case "url":
		return append(b, req.URL...)
	case "payload":
		return append(b, req.Payload...)
	}
	field, ok := strings.CutPrefix(name, "payload.")
	if !ok {
		return append(append(append(b, '{'), name...), '}')
	}
	v, ok := req.Field(field)
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
