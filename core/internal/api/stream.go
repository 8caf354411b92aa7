package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Rows a list loads, renders and writes at a time. A page's memory is one
// chunk's, whatever its page_size: an event may carry a payload of up to
// server.max_body_bytes, delivery.max_response_bytes for its
// response_content and each of its attempts (at most
// webhook.MaxAttemptsShown), and its hook (about 33 KiB of
// bounded fields as JSON, up to ~20 times that decoded when config is a
// long list); a hook only the latter. Each event is copied several times on
// its way out (driver, domain, request body, encoder), so two at a time keep
// a worst-case page near 40 MiB; scripts/memory.sh measures it.
const (
	hookChunk  = 20
	eventChunk = 2
)

// listPage answers a list request: the page's ids from list in the
// requester's scope, then their items loaded and rendered for the
// requester a chunk at a time (writePage).
func listPage[T any](s *Server, w http.ResponseWriter, r *http.Request,
	list func(context.Context, webhook.Scope, webhook.Page) ([]int64, webhook.PageInfo, error),
	chunk int, load func(context.Context, webhook.Scope, []int64) ([]T, error), render func(T, int64) any) error {
	p, err := s.page(r)
	if err != nil {
		return err
	}
	sc := scope(r)
	ids, info, err := list(r.Context(), sc, p)
	if err != nil {
		return err
	}
	viewer := user(r).ID
	return writePage(s, w, r, ids, info, chunk,
		func(ctx context.Context, ids []int64) ([]T, error) { return load(ctx, sc, ids) },
		func(v T) any { return render(v, viewer) })
}

// writePage answers 200 with the list page of ids {"next", "previous",
// "results"}, byte for byte as writeJSON would, but loads, renders and
// writes the results a chunk at a time. Once the first chunk is written the
// status is sent: a later failure can only abort the response, which a
// client sees as a broken connection rather than a short page.
func writePage[T any](s *Server, w http.ResponseWriter, r *http.Request, ids []int64, info webhook.PageInfo,
	chunk int, load func(ctx context.Context, ids []int64) ([]T, error), render func(T) any) error {
	first, last := int64(0), int64(0)
	if len(ids) > 0 {
		first, last = ids[0], ids[len(ids)-1]
	}
	head, err := marshal(s.pageOf(r, json.RawMessage("[]"), info, first, last))
	if err != nil {
		return err
	}
	// head ends with "results":[]}\n; the items go between the brackets.
	tail := []byte("]}\n")
	head = bytes.TrimSuffix(head, tail)

	started := false
	start := func() {
		started = true
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(head)
	}
	out := &itemWriter{w: w}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	written := 0
	for from := 0; from < len(ids); from += chunk {
		rows, err := load(r.Context(), ids[from:min(from+chunk, len(ids))])
		if err != nil {
			if !started {
				return err // nothing sent yet: an error answer is still possible
			}
			if r.Context().Err() != nil {
				return nil // the client went away
			}
			s.log.WarnContext(r.Context(), "list aborted", "error", err, "request_id", requestID(r.Context()))
			panic(http.ErrAbortHandler)
		}
		if !started {
			start()
		}
		for i := range rows {
			out.comma = written > 0
			if err := enc.Encode(render(rows[i])); err != nil {
				if out.err != nil {
					return nil // the client went away
				}
				s.log.ErrorContext(r.Context(), "encode list item", "error", err, "request_id", requestID(r.Context()))
				panic(http.ErrAbortHandler)
			}
			var zero T
			rows[i] = zero // let the row go before the next is rendered
			written++
		}
	}
	if !started {
		start()
	}
	_, _ = w.Write(tail)
	return nil
}

// itemWriter writes one list item as json.Encoder.Encode hands it over (in
// one Write), preceded by a comma when it is not the first and without the
// newline Encode ends it with: the bytes writeJSON's encoding of the whole
// slice has, without a second copy of the item.
type itemWriter struct {
	w     http.ResponseWriter
	comma bool
	err   error
}

func (iw *itemWriter) Write(p []byte) (int, error) {
	if iw.comma {
		if _, iw.err = iw.w.Write([]byte{','}); iw.err != nil {
			return 0, iw.err
		}
	}
	if _, iw.err = iw.w.Write(bytes.TrimSuffix(p, []byte("\n"))); iw.err != nil {
		return 0, iw.err
	}
	return len(p), nil
}
