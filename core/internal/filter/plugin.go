package filter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/internal/registry"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Registry maps plugin filter names to functions ({"plugin": name, ...} in
// a hook's filter). The zero value is empty and ready; it is safe for
// concurrent use.
type Registry struct {
	registry.Registry[webhook.Filter]
}

// Plugins runs plugin filters by name: fan-out and the dry run call it;
// *Registry implements it.
type Plugins interface {
	Match(ctx context.Context, name string, kwargs json.RawMessage, eventType string, payload json.RawMessage) (bool, error)
}

// MaxPluginName bounds a plugin filter's name, like the other registry
// keys a hook names (callback, countdown choice).
const MaxPluginName = 255

// ErrUnknownPlugin is Match's and Validate's error for a name nobody
// registers.
var ErrUnknownPlugin = errors.New("no plugin registers this filter")

// parsePlugin reads a plugin filter: exactly the keys plugin (a
// registered name, checked by the API) and kwargs (an object; absent or
// null is {}, what the plugin's validator then receives). The stored
// document always has both keys.
func parsePlugin(obj map[string]any, src []byte) (*Filter, error) {
	for k := range obj {
		if k != "plugin" && k != "kwargs" {
			return nil, errf("A plugin filter has only the keys \"plugin\" and \"kwargs\", not %q.", clip(k))
		}
	}
	name, ok := obj["plugin"].(string)
	switch {
	case !ok:
		return nil, errf("\"plugin\" must be the name of a plugin filter (a string), got %s.", kind(obj["plugin"]))
	case strings.TrimSpace(name) == "":
		return nil, errf("\"plugin\" may not be blank.")
	case utf8.RuneCountInString(name) > MaxPluginName:
		return nil, errf("\"plugin\" has more than %d characters.", MaxPluginName)
	}
	var raw struct {
		Kwargs json.RawMessage `json:"kwargs"`
	}
	if err := json.Unmarshal(src, &raw); err != nil {
		return nil, errf("Not valid JSON: %v.", err)
	}
	kwargs := raw.Kwargs
	switch {
	case len(kwargs) == 0 || string(kwargs) == "null":
		kwargs = json.RawMessage(`{}`)
	case kwargs[0] != '{':
		return nil, errf("\"kwargs\" must be a JSON object, got %s.", kind(obj["kwargs"]))
	}
	return pluginFilter(name, kwargs), nil
}

// pluginFilter is the plugin filter name with kwargs (compact JSON).
func pluginFilter(name string, kwargs json.RawMessage) *Filter {
	src, _ := json.Marshal(struct {
		Plugin string          `json:"plugin"`
		Kwargs json.RawMessage `json:"kwargs"`
	}{name, kwargs})
	return &Filter{src: src, plugin: name, kwargs: kwargs}
}

// Plugin names f's plugin filter and its kwargs; name is "" for a
// declarative filter.
func (f *Filter) Plugin() (name string, kwargs json.RawMessage) { return f.plugin, f.kwargs }

// WithKwargs is plugin filter f with kwargs replaced (a validator's
// cleaned kwargs).
func (f *Filter) WithKwargs(kwargs json.RawMessage) *Filter {
	var b bytes.Buffer
	if json.Compact(&b, kwargs) != nil {
		return f
	}
	return pluginFilter(f.plugin, b.Bytes())
}

// Match runs the plugin filter name on an event. A panic is an error:
// fan-out then delivers, as for any failure.
func (r *Registry) Match(ctx context.Context, name string, kwargs json.RawMessage, eventType string, payload json.RawMessage) (deliver bool, err error) {
	f, ok := r.Lookup(name)
	if !ok || f.Match == nil {
		return true, ErrUnknownPlugin
	}
	defer func() {
		if p := recover(); p != nil {
			deliver, err = true, fmt.Errorf("panic: %v", p)
		}
	}()
	return f.Match(ctx, kwargs, eventType, payload)
}

// Validate runs name's kwargs validator (webhook.KwargsValidator.Run).
func (r *Registry) Validate(ctx context.Context, name string, kwargs json.RawMessage) (clean json.RawMessage, fieldErrs map[string]any, err error) {
	f, ok := r.Lookup(name)
	if !ok {
		return nil, nil, ErrUnknownPlugin
	}
	return f.Validate.Run(ctx, kwargs)
}
