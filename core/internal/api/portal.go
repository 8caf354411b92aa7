package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The tenant portal (docs/CONSOLE.md): an admin or a publisher asks for a
// one-time URL that opens the web console for one user, limited to some
// capabilities.

// Portal session lifetimes a request may ask for.
const (
	minPortalTTL     = time.Minute
	maxPortalTTL     = 24 * time.Hour
	defaultPortalTTL = 15 * time.Minute
)

// createPortalSession is POST portal/sessions/ {"user": "<username>",
// "capabilities": ["read", "manage_hooks"], "ttl": "15m"}: a one-time URL
// whose code works once, for at most five minutes (and never longer than
// ttl).
func (s *Server) createPortalSession(w http.ResponseWriter, r *http.Request) error {
	if !user(r).Role.CanPublish() {
		return webhook.ErrForbidden
	}
	obj, err := s.readObject(w, r)
	if err != nil {
		return err
	}
	errs := &webhook.ValidationError{}
	checkFields(obj, errs, "user", "capabilities", "ttl")
	var username string
	if raw, ok := obj["user"]; ok {
		var msg string
		if username, msg = decodeString(raw, false, false, maxNameLen); msg != "" {
			errs.Add("user", msg)
		}
	} else {
		errs.Add("user", msgRequired)
	}
	caps := []string{webhook.CapRead}
	if raw, ok := obj["capabilities"]; ok {
		caps = decodeCapabilities(raw, errs)
	}
	ttl := defaultPortalTTL
	if raw, ok := obj["ttl"]; ok {
		ttl = decodePortalTTL(raw, errs)
	}
	if err := errs.Err(); err != nil {
		return err
	}
	u, code, expires, err := s.deps.Store.CreatePortalCode(r.Context(), username, caps, ttl)
	if errors.Is(err, webhook.ErrNotFound) {
		return webhook.NewValidationError("user", fmt.Sprintf("Object with username=%s does not exist.", username))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{
		"url":          s.consoleOrigin(r) + "/portal#code=" + code,
		"user":         u.Username,
		"capabilities": caps,
		"ttl":          ttl.String(),
		"expires_at":   formatTime(expires),
	})
}

// decodeCapabilities reads a list of distinct capability names; read is
// always given (a portal that cannot look is no portal).
func decodeCapabilities(raw json.RawMessage, errs *webhook.ValidationError) []string {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		errs.Add("capabilities", fmt.Sprintf("Expected a list of items but got type %q.", pyType(raw)))
		return nil
	}
	if len(list) > len(webhook.Capabilities) {
		errs.Add("capabilities", fmt.Sprintf("Ensure this field has no more than %d elements.", len(webhook.Capabilities)))
		return nil
	}
	caps := []string{webhook.CapRead}
	for _, item := range list {
		c, msg := decodeString(item, false, false, 64)
		switch {
		case msg != "":
			errs.Add("capabilities", msg)
		case !slices.Contains(webhook.Capabilities, c):
			errs.Add("capabilities", choiceMsg(c))
		case !slices.Contains(caps, c):
			caps = append(caps, c)
		}
	}
	return caps
}

// decodePortalTTL reads a Go duration ("15m", "2h") between minPortalTTL
// and maxPortalTTL.
func decodePortalTTL(raw json.RawMessage, errs *webhook.ValidationError) time.Duration {
	v, msg := decodeString(raw, false, false, 32)
	if msg != "" {
		errs.Add("ttl", msg)
		return 0
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		errs.Add("ttl", `Enter a duration like "15m" or "2h".`)
	case d < minPortalTTL || d > maxPortalTTL:
		errs.Add("ttl", fmt.Sprintf("Ensure this duration is between %v and %v.", minPortalTTL, maxPortalTTL))
	}
	return d
}

// consoleOrigin is where the console is served: the origin of
// server.public_url, else of the request.
func (s *Server) consoleOrigin(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		if u, err := url.Parse(s.cfg.PublicURL); err == nil {
			return u.Scheme + "://" + u.Host
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + strings.TrimSpace(r.Host)
}
