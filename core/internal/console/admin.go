package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The admin pages, plugins and event types (anyone but an admin gets a
// 404, as for a row out of scope), and the API's reference.

// PluginInfo is one file of the plugin directory as the plugins page
// shows it: what the plugin host says of it, and its calls' metrics.
type PluginInfo struct {
	File, Name, SHA256                         string
	Countdowns, Callbacks, Filters, Transforms []string
	Loaded                                     bool
	LoadedAt                                   string
	// Error is why the file, or its latest change, is not served.
	Error string
	// Calls and Failures count its calls since the node started; Mean is
	// their mean duration.
	Calls, Failures uint64
	Mean            time.Duration
	// ByCall splits the calls by kind (countdown, validate, callback,
	// filter, transform); the page sorts it by kind.
	ByCall []PluginCall
}

// PluginCall is a plugin file's calls of one kind.
type PluginCall struct {
	Call            string
	Calls, Failures uint64
	Mean            time.Duration
}

func admin(rq *request) error {
	if rq.sess.User.Role != webhook.RoleAdmin {
		return errNotFound
	}
	return nil
}

func (h *Handler) pluginsPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := admin(rq); err != nil {
		return err
	}
	var list []PluginInfo
	if h.deps.Plugins != nil {
		list = h.deps.Plugins()
	}
	sort.Slice(list, func(i, j int) bool { return list[i].File < list[j].File })
	for _, p := range list {
		sort.Slice(p.ByCall, func(i, j int) bool { return p.ByCall[i].Call < p.ByCall[j].Call })
	}
	h.render(w, r, rq, http.StatusOK, "plugins", "Plugins", list)
	return nil
}

type eventTypesData struct {
	Names   []string
	CSRF    string
	Name    string
	Message string
	Done    string
}

func (h *Handler) eventTypesPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := admin(rq); err != nil {
		return err
	}
	return h.renderEventTypes(w, r, rq, http.StatusOK, eventTypesData{Done: map[string]string{"added": "The event type is registered."}[r.URL.Query().Get("done")]})
}

func (h *Handler) renderEventTypes(w http.ResponseWriter, r *http.Request, rq *request, status int, d eventTypesData) error {
	names, err := h.deps.Store.EventTypes(r.Context())
	if err != nil {
		return err
	}
	d.Names, d.CSRF = names, rq.sess.CSRF
	h.render(w, r, rq, status, "eventtypes", "Event types", d)
	return nil
}

// addEventType registers a name through Deps.AddEventType, which
// validates it as the CLI does.
func (h *Handler) addEventType(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := admin(rq); err != nil {
		return err
	}
	name := r.PostFormValue("name")
	if h.deps.AddEventType == nil {
		return &badRequest{"This node cannot add event types."}
	}
	if err := h.deps.AddEventType(r.Context(), name); err != nil {
		var bad *webhook.ValidationError
		if errors.As(err, &bad) {
			return h.renderEventTypes(w, r, rq, http.StatusBadRequest, eventTypesData{Name: name, Message: strings.Join(bad.Messages(), " ")})
		}
		return err
	}
	http.Redirect(w, r, "/event-types?done=added", http.StatusSeeOther)
	return nil
}

// apiDoc is the OpenAPI document as the reference page shows it.
type apiDoc struct {
	Title, Version, Description string
	Operations                  []apiOperation
	Schemas                     []apiSchema
}

type apiOperation struct {
	Method, Path, Summary, Description, Anchor string
	Params                                     []apiField
	Body                                       string
	Responses                                  []apiResponse
}

type apiField struct {
	Name, In, Type, Description string
	Required                    bool
}

type apiResponse struct{ Code, Description, Schema string }

type apiSchema struct {
	Name, Description string
	Fields            []apiField
}

// openapiDoc is the part of OpenAPI 3.1 the page reads.
type openapiDoc struct {
	Info struct {
		Title, Version, Description string
	}
	Paths      map[string]map[string]json.RawMessage
	Components struct {
		Schemas    map[string]openapiSchema
		Responses  map[string]openapiResponse
		Parameters map[string]openapiParam
	}
}

type openapiSchema struct {
	Ref         string `json:"$ref"`
	Type        any
	Description string
	Properties  map[string]openapiSchema
	Required    []string
	Items       *openapiSchema
	OneOf       []openapiSchema `json:"oneOf"`
	AnyOf       []openapiSchema `json:"anyOf"`
}

type openapiParam struct {
	Ref         string `json:"$ref"`
	Name, In    string
	Description string
	Required    bool
	Schema      openapiSchema
}

type openapiResponse struct {
	Ref         string `json:"$ref"`
	Description string
	Content     map[string]struct{ Schema openapiSchema }
}

type openapiOp struct {
	Summary, Description string
	Parameters           []openapiParam
	RequestBody          *struct {
		Content map[string]struct{ Schema openapiSchema }
	} `json:"requestBody"`
	Responses map[string]openapiResponse
}

var httpMethods = []string{"get", "post", "put", "patch", "delete"}

// readAPIDoc renders the OpenAPI document as a reference: every
// operation with its parameters, body and answers, and every schema.
func readAPIDoc(raw []byte) (apiDoc, error) {
	var d openapiDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return apiDoc{}, fmt.Errorf("console: the OpenAPI document: %w", err)
	}
	out := apiDoc{Title: d.Info.Title, Version: d.Info.Version, Description: d.Info.Description}
	refName := func(ref string) string { return ref[strings.LastIndex(ref, "/")+1:] }
	for _, path := range slices.Sorted(mapKeys(d.Paths)) {
		item := d.Paths[path]
		var shared []openapiParam
		if p, ok := item["parameters"]; ok {
			_ = json.Unmarshal(p, &shared)
		}
		for _, m := range httpMethods {
			raw, ok := item[m]
			if !ok {
				continue
			}
			var op openapiOp
			if err := json.Unmarshal(raw, &op); err != nil {
				return apiDoc{}, fmt.Errorf("console: the OpenAPI document: %s %s: %w", m, path, err)
			}
			o := apiOperation{Method: strings.ToUpper(m), Path: path, Summary: op.Summary, Description: op.Description,
				Anchor: elementID(m + path)}
			for _, p := range append(slices.Clone(shared), op.Parameters...) {
				if p.Ref != "" {
					p = d.Components.Parameters[refName(p.Ref)]
				}
				o.Params = append(o.Params, apiField{Name: p.Name, In: p.In, Type: typeName(p.Schema, refName), Description: p.Description, Required: p.Required})
			}
			if op.RequestBody != nil {
				for _, c := range op.RequestBody.Content {
					o.Body = typeName(c.Schema, refName)
				}
			}
			for _, code := range slices.Sorted(mapKeys(op.Responses)) {
				res := op.Responses[code]
				if res.Ref != "" {
					res = d.Components.Responses[refName(res.Ref)]
				}
				ar := apiResponse{Code: code, Description: res.Description}
				for _, c := range res.Content {
					ar.Schema = typeName(c.Schema, refName)
				}
				o.Responses = append(o.Responses, ar)
			}
			out.Operations = append(out.Operations, o)
		}
	}
	for _, name := range slices.Sorted(mapKeys(d.Components.Schemas)) {
		s := d.Components.Schemas[name]
		as := apiSchema{Name: name, Description: s.Description}
		for _, f := range slices.Sorted(mapKeys(s.Properties)) {
			p := s.Properties[f]
			as.Fields = append(as.Fields, apiField{Name: f, Type: typeName(p, refName), Description: p.Description,
				Required: slices.Contains(s.Required, f)})
		}
		out.Schemas = append(out.Schemas, as)
	}
	return out, nil
}

// typeName writes a schema's type in a few words: a named schema, an
// array of one, or its JSON type(s).
func typeName(s openapiSchema, refName func(string) string) string {
	switch {
	case s.Ref != "":
		return refName(s.Ref)
	case s.Items != nil:
		return "array of " + typeName(*s.Items, refName)
	case len(s.OneOf) > 0 || len(s.AnyOf) > 0:
		var parts []string
		for _, x := range append(s.OneOf, s.AnyOf...) {
			parts = append(parts, typeName(x, refName))
		}
		return strings.Join(parts, " or ")
	}
	switch t := s.Type.(type) {
	case string:
		return t
	case []any:
		var parts []string
		for _, x := range t {
			parts = append(parts, fmt.Sprint(x))
		}
		return strings.Join(parts, " or ")
	}
	return "any"
}

// apiDocsPage is the API's reference, for everyone signed in: the API
// document is public anyway (GET openapi.json needs no token).
func (h *Handler) apiDocsPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	if h.apiDoc == nil {
		return &badRequest{"This node has no API document."}
	}
	h.render(w, r, rq, http.StatusOK, "apidocs", "API reference", h.apiDoc)
	return nil
}
