package api_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
)

// The conformance test: every API test's server is wrapped by conform, so
// each request and response the tests exchange is checked against
// openapi.json, and TestMain fails the run when an operation of the
// document was never exercised. The document cannot drift from the code
// in either direction without a test failing.

var spec struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error

	mu      sync.Mutex
	covered map[string]bool // operationId → exercised with a 2xx answer
}

func loadSpec() (*openapi3.T, routers.Router, error) {
	spec.once.Do(func() {
		loader := openapi3.NewLoader()
		spec.doc, spec.err = loader.LoadFromData(api.OpenAPI())
		if spec.err != nil {
			return
		}
		if spec.err = spec.doc.Validate(context.Background()); spec.err != nil {
			return
		}
		spec.router, spec.err = gorillamux.NewRouter(spec.doc)
		spec.covered = map[string]bool{}
	})
	return spec.doc, spec.router, spec.err
}

// conform serves next, failing t when a request or its response does not
// match the OpenAPI document.
func conform(t *testing.T, next http.Handler) http.Handler {
	if _, _, err := loadSpec(); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		if err := check(r, body, rec.Result()); err != nil {
			t.Errorf("OpenAPI conformance: %s %s → %d: %v\nrequest: %.300s\nresponse: %.300s",
				r.Method, r.URL, rec.Code, err, body, rec.Body.Bytes())
		}
	})
}

// check validates one exchange. A request the server accepted (2xx) must be
// valid for its operation; every response must be documented for its
// operation and status, with a matching body. A path or method that is not
// in the document must have been answered 404 or 405.
func check(r *http.Request, body []byte, res *http.Response) error {
	_, router, _ := loadSpec()
	// HEAD and OPTIONS are answered generically for every resource.
	if r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return nil
	}
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	// Every route is also served without its trailing slash; the document
	// spells the slash form.
	if p := req.URL.Path; strings.HasPrefix(p, "/whisperer/") && !strings.HasSuffix(p, "/") && !strings.HasSuffix(p, ".json") {
		req.URL.Path += "/"
		req.URL.RawPath = ""
	}
	resBody, _ := io.ReadAll(res.Body)
	route, params, err := router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrMethodNotAllowed):
		// Authentication comes first, so an anonymous caller gets 401.
		if (res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") == "") && res.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("method not in the document, yet answered %d", res.StatusCode)
		}
		return nil
	case err != nil:
		if res.StatusCode != http.StatusNotFound {
			return fmt.Errorf("path not in the document (%v), yet answered %d", err, res.StatusCode)
		}
		return nil
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	if res.StatusCode < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return fmt.Errorf("request accepted but not valid for %s: %w", route.Operation.OperationID, err)
		}
		spec.mu.Lock()
		spec.covered[route.Operation.OperationID] = true
		spec.mu.Unlock()
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(resBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("response does not match %s: %w", route.Operation.OperationID, err)
	}
	return nil
}

// TestMain runs the tests, then, when the whole suite ran and passed, fails
// unless every operation of the document was exercised successfully.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && spec.doc != nil {
		var missing []string
		for _, item := range spec.doc.Paths.Map() {
			for _, op := range item.Operations() {
				if !spec.covered[op.OperationID] {
					missing = append(missing, op.OperationID)
				}
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			fmt.Fprintf(os.Stderr, "OpenAPI conformance: operations no test exercised with a 2xx answer: %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}

// The document is served at BasePath + "openapi.json", as checked in, with
// its paths under a custom base path when one is configured.
func TestOpenAPIServed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		r := e.do("GET", "/whisperer/openapi.json", "", nil)
		want(t, r, http.StatusOK, "")
		if !bytes.Equal(r.raw, api.OpenAPI()) {
			t.Error("the served document is not openapi.json")
		}
	})
}
