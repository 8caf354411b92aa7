package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The tenant portal (docs/CONSOLE.md): a one-time code from the API's
// POST portal/sessions/ is exchanged here for a portal session, which the
// same pages serve limited to one user and its capabilities, and which a
// page of a console.frame_ancestors origin may embed in an iframe.

// portalCookie carries a portal session's id. It is SameSite=None (an
// iframe on the application's site is a cross-site context, where Lax and
// Strict cookies are not sent), hence always Secure, and Partitioned
// (CHIPS): kept apart per embedding site, so browsers that block
// third-party cookies still keep it, and no other site can use it.
const portalCookie = "whisperer_portal"

// errForbidden pages answer 403: a portal without the capability.
var errForbidden = webhook.ErrForbidden

func (h *Handler) portalCookieOf(id string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: portalCookie, Value: id, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteNoneMode, Partitioned: true}
	if expires.IsZero() {
		c.MaxAge = -1
	} else {
		c.Expires = expires.UTC()
		c.MaxAge = max(int(time.Until(expires).Seconds()), 1)
	}
	return c
}

// portalID is the request's portal session id, when it has the shape of
// one.
func portalID(r *http.Request) string {
	c, err := r.Cookie(portalCookie)
	if err != nil || !isHex(c.Value, 64) {
		return ""
	}
	return c.Value
}

// allowFraming replaces the strict framing headers with the portal's:
// frame-ancestors lists console.frame_ancestors (none: 'none').
func (h *Handler) allowFraming(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", h.portalCSP)
	if len(h.cfg.FrameAncestors) > 0 {
		w.Header().Del("X-Frame-Options")
	}
}

// portalPage is GET /portal: a page whose script (assets/portal.js) takes
// the code from the URL's fragment, removes it from the address bar and
// posts it to /portal/session.
func (h *Handler) portalPage(w http.ResponseWriter, r *http.Request) {
	h.allowFraming(w)
	h.render(w, r, nil, http.StatusOK, "portal", "Opening the portal", nil)
}

// portalExchange is POST /portal/session code=…: one code, one session.
// The request must come from the console's own page (cross-origin
// protection): another site cannot sign a browser in to a portal of its
// choosing.
func (h *Handler) portalExchange(w http.ResponseWriter, r *http.Request) {
	h.allowFraming(w)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := h.cross.Check(r); err != nil {
		http.Error(w, "This request was sent from another site and was refused.", http.StatusForbidden)
		return
	}
	if wait, ok := h.limiter.allow(clientIP(r)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		http.Error(w, "Too many attempts from your address.", http.StatusTooManyRequests)
		return
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	if !isHex(code, 64) {
		http.Error(w, "This portal link is not valid.", http.StatusForbidden)
		return
	}
	id, sess, err := h.deps.Store.RedeemPortalCode(r.Context(), code)
	switch {
	case errors.Is(err, webhook.ErrUnauthenticated):
		http.Error(w, "This portal link has expired or was already used. Ask for a new one.", http.StatusForbidden)
		return
	case err != nil:
		h.log.WarnContext(r.Context(), "console: portal exchange failed", "error", err)
		http.Error(w, "The database is unavailable; try again shortly.", http.StatusServiceUnavailable)
		return
	}
	h.log.InfoContext(r.Context(), "console: portal opened", "user", sess.User.Username, "capabilities", strings.Join(sess.Capabilities, ","))
	http.SetCookie(w, h.portalCookieOf(id, sess.ExpiresAt))
	w.WriteHeader(http.StatusNoContent)
}

// need refuses the page to a portal without capability c.
func need(c string, fn pageFunc) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, rq *request) error {
		if !rq.sess.Can(c) {
			return errForbidden
		}
		return fn(w, r, rq)
	}
}

// brandCSS is GET /assets/brand.css: the accent colour from
// console.accent_color (validated as #rrggbb), as a stylesheet, since
// the CSP allows no inline style.
func (h *Handler) brandCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	if h.cfg.AccentColor != "" {
		_, _ = w.Write([]byte(":root { --accent: " + h.cfg.AccentColor + "; }\n"))
	}
}
