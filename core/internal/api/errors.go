package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Errors the API itself raises, beside webhook's. Each knows its status
// and DRF detail.
type (
	methodNotAllowed struct{ method string }
	unsupportedMedia struct{ mediaType string }
	bodyTooLarge     struct{ limit int64 }
	parseError       struct{ msg string }
	// authError is a 401 with DRF's message (not provided, bad header,
	// invalid token).
	authError struct{ msg string }
	// httpError is any other fixed status and detail.
	httpError struct {
		status int
		msg    string
	}
)

func (e *methodNotAllowed) Error() string { return fmt.Sprintf("Method %q not allowed.", e.method) }
func (e *unsupportedMedia) Error() string {
	return fmt.Sprintf("Unsupported media type %q in request.", e.mediaType)
}
func (e *bodyTooLarge) Error() string {
	return fmt.Sprintf("Request body is larger than %d bytes.", e.limit)
}
func (e *parseError) Error() string { return "JSON parse error - " + e.msg }
func (e *authError) Error() string  { return e.msg }
func (e *httpError) Error() string  { return e.msg }

// errPluginsLoading answers a hook naming a countdown or callback that a
// plugin still loading at start may declare: 503 with Retry-After.
var errPluginsLoading = &httpError{status: http.StatusServiceUnavailable,
	msg: "The plugins are still loading; this countdown, callback, filter or transform may be one of theirs. Try again shortly."}

// pluginsRetryAfter is the Retry-After of errPluginsLoading, in seconds.
const pluginsRetryAfter = "2"

const (
	msgNotFound    = "Not found."
	msgUnavailable = "The database is unavailable; try again shortly."
	msgForbidden   = "You do not have permission to perform this action."
	msgInternal    = "Internal server error."
)

func detail(msg string) map[string]string { return map[string]string{"detail": msg} }

// serve adapts a handlerFunc: the one place an error becomes a status and
// a DRF-shaped body.
func (s *Server) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := s.toStatus(r, err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Token")
	}
	if errors.Is(err, errPluginsLoading) {
		w.Header().Set("Retry-After", pluginsRetryAfter)
	}
	_ = writeJSON(w, status, body)
}

func (s *Server) toStatus(r *http.Request, err error) (int, any) {
	for _, answer := range errorAnswers {
		if status, body, ok := answer(err); ok {
			if status == http.StatusServiceUnavailable && !errors.Is(err, errPluginsLoading) {
				s.log.WarnContext(r.Context(), "database unavailable", "error", err, "request_id", requestID(r.Context()))
			}
			return status, body
		}
	}
	if r.Context().Err() != nil {
		// The client went away; nobody reads this answer. 499 is nginx's
		// "client closed request", kept for the access log.
		return 499, detail("Client closed request.")
	}
	s.log.ErrorContext(r.Context(), "internal error", "error", err, "method", r.Method,
		"path", r.URL.Path, "request_id", requestID(r.Context()))
	return http.StatusInternalServerError, detail(msgInternal)
}

// errorAnswers is the one table of the API's answers to errors, from
// every layer: the first row that takes an error gives its status and
// DRF-shaped body. The other layers return typed errors and sentinels
// (webhook's), never wording; an error no row takes is a 499 when the
// client has gone, else a 500.
var errorAnswers = []func(error) (status int, body any, ok bool){
	as(func(e *webhook.ValidationError) (int, any) { return http.StatusBadRequest, e.Fields }),
	as(func(e *webhook.UnknownEventTypeError) (int, any) {
		return http.StatusBadRequest, fieldError("event_type", choiceMsg(e.EventType))
	}),
	is(webhook.ErrInvalidPayload, http.StatusBadRequest, fieldError("payload", "Value must be valid JSON.")),
	as(func(e *parseError) (int, any) { return http.StatusBadRequest, detail(e.Error()) }),
	as(func(e *authError) (int, any) { return http.StatusUnauthorized, detail(e.msg) }),
	as(func(e *methodNotAllowed) (int, any) { return http.StatusMethodNotAllowed, detail(e.Error()) }),
	as(func(e *unsupportedMedia) (int, any) { return http.StatusUnsupportedMediaType, detail(e.Error()) }),
	as(func(e *bodyTooLarge) (int, any) { return http.StatusRequestEntityTooLarge, detail(e.Error()) }),
	as(func(e *httpError) (int, any) { return e.status, detail(e.msg) }),
	as(func(e *webhook.ConflictError) (int, any) { return http.StatusConflict, detail(e.Detail) }),
	event(webhook.ErrDelivered, http.StatusConflict, `Event %s is already delivered; send "force": true to deliver it again.`),
	event(webhook.ErrDelivering, http.StatusConflict, "Event %s is being delivered right now, or was just delivered."),
	is(webhook.ErrNotFound, http.StatusNotFound, detail(msgNotFound)),
	is(webhook.ErrUnauthenticated, http.StatusUnauthorized, detail("Invalid token.")),
	is(webhook.ErrForbidden, http.StatusForbidden, detail(msgForbidden)),
	is(webhook.ErrAlreadyExists, http.StatusConflict, detail("Already exists.")),
	// The store marks the database's failures (a broken connection, a
	// network error or timeout); a deadline passing is the same answer.
	is(webhook.ErrUnavailable, http.StatusServiceUnavailable, detail(msgUnavailable)),
	is(context.DeadlineExceeded, http.StatusServiceUnavailable, detail(msgUnavailable)),
}

// as is a row for the errors of type T.
func as[T error](answer func(T) (int, any)) func(error) (int, any, bool) {
	return func(err error) (int, any, bool) {
		var t T
		if !errors.As(err, &t) {
			return 0, nil, false
		}
		status, body := answer(t)
		return status, body, true
	}
}

// is is a row for the errors that are target.
func is(target error, status int, body any) func(error) (int, any, bool) {
	return func(err error) (int, any, bool) {
		return status, body, errors.Is(err, target)
	}
}

// event is a row for a *webhook.EventError of target; format names the
// event (%s, its uuid).
func event(target error, status int, format string) func(error) (int, any, bool) {
	return func(err error) (int, any, bool) {
		var e *webhook.EventError
		if !errors.As(err, &e) || !errors.Is(e.Err, target) {
			return 0, nil, false
		}
		return status, detail(fmt.Sprintf(format, e.UUID)), true
	}
}

func fieldError(field, msg string) map[string][]string { return map[string][]string{field: {msg}} }

// writeJSON writes v as JSON with status. HTML characters are left
// unescaped, as DRF's renderer does.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	writeBody(w, status, b)
	return nil
}

// writeBody answers status with the JSON b.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func marshal(v any) ([]byte, error) {
	var buf jsonBuffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return buf.b, nil
}

type jsonBuffer struct{ b []byte }

func (j *jsonBuffer) Write(p []byte) (int, error) { j.b = append(j.b, p...); return len(p), nil }

type ctxKey int

const requestIDKey ctxKey = 0

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// statusWriter remembers the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe gives each request an id (the client's X-Request-Id when it is
// sane), logs one line per request and turns a panic into a 500. It never
// logs headers or bodies, so tokens and secrets stay out of the logs.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(p),
					"method", r.Method, "path", r.URL.Path, "request_id", id, "stack", string(debug.Stack()))
				if sw.status == 0 {
					_ = writeJSON(sw, http.StatusInternalServerError, detail(msgInternal))
				}
			}
			level := slog.LevelInfo
			if sw.status >= 500 {
				level = slog.LevelWarn
			}
			// Checked first: the arguments cost allocations even when the
			// level (warn and above) leaves the line out.
			if s.log.Enabled(r.Context(), level) {
				s.log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path,
					"status", sw.status, "duration", time.Since(start), "request_id", id)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// validRequestID accepts up to 128 visible ASCII characters, so a client's
// id cannot forge log lines or bloat them.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
