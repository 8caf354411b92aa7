package api

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Lists page like DRF's CursorPagination: {"next", "previous", "results"},
// with next and previous URLs carrying an opaque cursor. The
// cursor is base64 of "p=<id>&r=<0|1>": the position and whether it pages
// backward, which is what DRF's cursor holds too.

type pageJSON struct {
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  any     `json:"results"`
}

var errInvalidCursor = &httpError{status: http.StatusNotFound, msg: "Invalid cursor"}

func encodeCursor(pos int64, reverse bool) string {
	v := url.Values{"p": {strconv.FormatInt(pos, 10)}}
	if reverse {
		v.Set("r", "1")
	}
	return base64.RawURLEncoding.EncodeToString([]byte(v.Encode()))
}

// page reads cursor and page_size. A page_size that is not a positive
// number is ignored and a large one capped, as DRF does.
func (s *Server) page(r *http.Request) (webhook.Page, error) {
	q := r.URL.Query()
	p := webhook.Page{Limit: s.cfg.PageSize}
	if n, err := strconv.Atoi(q.Get("page_size")); err == nil && n > 0 {
		p.Limit = min(n, s.cfg.MaxPageSize)
	}
	c := q.Get("cursor")
	if c == "" {
		return p, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		// DRF's cursors are padded standard base64; accept that spelling.
		if raw, err = base64.URLEncoding.DecodeString(c); err != nil {
			return p, errInvalidCursor
		}
	}
	v, err := url.ParseQuery(string(raw))
	if err != nil {
		return p, errInvalidCursor
	}
	pos, ok := parseID(v.Get("p"))
	if !ok {
		return p, errInvalidCursor
	}
	switch v.Get("r") {
	case "":
		p.Before = pos
	case "1":
		p.After = pos
	default:
		return p, errInvalidCursor
	}
	return p, nil
}

// pageOf wraps results (ids first … last, newest first) with links to the
// neighbouring pages.
func (s *Server) pageOf(r *http.Request, results any, info webhook.PageInfo, first, last int64) pageJSON {
	out := pageJSON{Results: results}
	cur, _ := s.page(r) // already validated by the handler
	if info.HasNext {
		pos := last
		if pos == 0 { // an empty page reached backward: continue past it
			pos = cur.After + 1
		}
		u := s.pageURL(r, encodeCursor(pos, false))
		out.Next = &u
	}
	if info.HasPrev {
		pos := first
		if pos == 0 {
			pos = cur.Before - 1
		}
		if pos > 0 {
			u := s.pageURL(r, encodeCursor(pos, true))
			out.Previous = &u
		}
	}
	return out
}

// pageURL is the request's path and query with cursor replaced, under
// Config.PublicURL when set. Never from the request's Host or forwarding
// headers: a client could point the links of a shared (or cached) answer
// anywhere.
func (s *Server) pageURL(r *http.Request, cursor string) string {
	q := r.URL.Query()
	q.Set("cursor", cursor)
	// One leading slash: "//host/…" would be a link to another host.
	u := url.URL{Path: "/" + strings.TrimLeft(r.URL.Path, "/"), RawQuery: q.Encode()}
	return s.cfg.PublicURL + u.String()
}
