package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// openAPI is the OpenAPI 3 document of this API, with the default base
// path. The conformance test (openapi_test.go) checks every request and
// response of the API tests against it, so it cannot drift from the code.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API with the default base
// path "/whisperer/". The caller must not modify it.
func OpenAPI() []byte { return openAPI }

// openAPIFor returns the document with its "/whisperer/" paths moved under
// base.
func openAPIFor(base string) ([]byte, error) {
	if base == "/whisperer/" {
		return openAPI, nil
	}
	var doc map[string]json.RawMessage
	var paths map[string]json.RawMessage
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	if err := json.Unmarshal(doc["paths"], &paths); err != nil {
		return nil, fmt.Errorf("openapi.json paths: %w", err)
	}
	moved := make(map[string]json.RawMessage, len(paths))
	for p, item := range paths {
		if rest, ok := strings.CutPrefix(p, "/whisperer/"); ok {
			p = base + rest
		}
		moved[p] = item
	}
	var err error
	if doc["paths"], err = json.Marshal(moved); err != nil {
		return nil, err
	}
	return json.MarshalIndent(doc, "", "  ")
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.openAPI)
	return nil
}

// OpenAPI returns the document served at BasePath + "openapi.json" (the
// web console renders it as its API reference). The caller must not
// modify it.
func (s *Server) OpenAPI() []byte { return s.openAPI }
