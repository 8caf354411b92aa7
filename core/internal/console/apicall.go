package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// maxAPIAnswer bounds what apiDo keeps of an answer: enough for any
// error body or one hook.
const maxAPIAnswer = 64 << 10

// recorder is the ResponseWriter an in-process API call writes to.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header { return rec.header }
func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
}
func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if room := maxAPIAnswer - rec.body.Len(); room > 0 {
		rec.body.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

// callAPI sends method path (under the API's base path) with a JSON body
// to the API as the signed-in user. A 2xx is nil; a 404 is errNotFound;
// anything else is the API's message as a badRequest (or, for 5xx, an
// unavailable database).
func (h *Handler) callAPI(r *http.Request, rq *request, method, path string, body []byte) error {
	_, err := h.callAPIBody(r, rq, method, path, body)
	return err
}

// callAPIBody is callAPI keeping a 2xx's body.
func (h *Handler) callAPIBody(r *http.Request, rq *request, method, path string, body []byte) ([]byte, error) {
	ans, err := h.apiDo(r, rq, method, path, body)
	var fe *apiFieldErrors
	if errors.As(err, &fe) {
		return nil, &badRequest{apiMessage(fe.body)}
	}
	return ans, err
}

// apiFieldErrors is a 4xx other than 404: body is the API's DRF-shaped
// error document.
type apiFieldErrors struct {
	status int
	body   []byte
}

func (e *apiFieldErrors) Error() string { return apiMessage(e.body) }

// apiDo is callAPI keeping the answer: a 2xx's body, or for a 4xx (not
// 404) an *apiFieldErrors, so that a form can show each field's errors.
func (h *Handler) apiDo(r *http.Request, rq *request, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), method, h.cfg.APIBase+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = r.RemoteAddr
	rec := &recorder{header: http.Header{}}
	h.deps.API(rq.sess.User, rec, req)
	switch {
	case rec.status >= 200 && rec.status < 300:
		return rec.body.Bytes(), nil
	case rec.status == http.StatusNotFound:
		return nil, errNotFound
	case rec.status >= 500:
		return nil, fmt.Errorf("%w: %s %s answered %d: %s", webhook.ErrUnavailable, method, path, rec.status, excerpt(rec.body.String(), 200))
	}
	return nil, &apiFieldErrors{rec.status, rec.body.Bytes()}
}

// apiMessage turns a DRF-shaped error body into one line: the detail, or
// "field: message" for each field.
func apiMessage(body []byte) string {
	var obj map[string]any
	if json.Unmarshal(body, &obj) != nil {
		return "The request was refused."
	}
	if d, ok := obj["detail"].(string); ok {
		return d
	}
	var parts []string
	for k, v := range obj {
		parts = append(parts, k+": "+flatten(v))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func flatten(v any) string {
	switch v := v.(type) {
	case []any:
		var s []string
		for _, e := range v {
			s = append(s, flatten(e))
		}
		return strings.Join(s, " ")
	case map[string]any:
		return apiMessageOf(v)
	}
	return fmt.Sprint(v)
}

func apiMessageOf(m map[string]any) string {
	b, _ := json.Marshal(m)
	return apiMessage(b)
}
