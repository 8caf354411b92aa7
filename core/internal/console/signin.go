package console

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

const (
	// sessionCookie carries the session id.
	sessionCookie = "whisperer_session"
	// signInCookie is the sign-in form's double-submit token: a session
	// cannot be forced on a browser by a form on another site.
	signInCookie = "whisperer_signin"
	// maxFormBytes bounds a form's body: the hook form's largest fields
	// are the API's limits (config 16 KiB, headers 16 KiB, filter 16 KiB,
	// three kwargs 4 KiB each), and the "try it" payload.
	maxFormBytes = 128 << 10
)

// sessionID returns the request's session id when it has the shape of
// one (64 hex digits), else "" without asking the store.
func sessionID(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil || !isHex(c.Value, 64) {
		return ""
	}
	return c.Value
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// cookie returns a cookie with the console's attributes: HttpOnly,
// SameSite=Strict, Secure over TLS (or when configured), for the whole
// site.
func (h *Handler) cookie(r *http.Request, name, value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || h.cfg.SecureCookies}
	if expires.IsZero() {
		c.MaxAge = -1 // deletes it
	} else {
		c.Expires = expires.UTC()
		c.MaxAge = max(int(time.Until(expires).Seconds()), 1)
	}
	return c
}

type signInData struct {
	CSRF    string
	Message string
}

func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request) {
	if id := sessionID(r); id != "" {
		if _, err := h.deps.Store.Session(r.Context(), id); err == nil {
			http.Redirect(w, r, "/hooks", http.StatusSeeOther)
			return
		}
	}
	h.renderSignIn(w, r, http.StatusOK, "")
}

// renderSignIn shows the form with a fresh double-submit token, or the
// browser's current one.
func (h *Handler) renderSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := ""
	if c, err := r.Cookie(signInCookie); err == nil && isHex(c.Value, 32) {
		tok = c.Value
	} else {
		var b [16]byte
		_, _ = rand.Read(b[:])
		tok = hex.EncodeToString(b[:])
	}
	http.SetCookie(w, h.cookie(r, signInCookie, tok, time.Now().Add(time.Hour)))
	h.render(w, r, nil, status, "signin", "Sign in", signInData{CSRF: tok, Message: msg})
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := h.cross.Check(r); err != nil {
		h.renderSignIn(w, r, http.StatusForbidden, "This sign-in form was sent from another site and was refused.")
		return
	}
	if wait, ok := h.limiter.allow(clientIP(r)); !ok {
		secs := int(wait.Seconds()) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		h.renderSignIn(w, r, http.StatusTooManyRequests,
			"Too many sign-in attempts from your address. Try again in "+strconv.Itoa(secs)+" seconds.")
		return
	}
	c, err := r.Cookie(signInCookie)
	if err != nil || !isHex(c.Value, 32) || !sameToken(r.PostFormValue("csrf"), c.Value) {
		h.renderSignIn(w, r, http.StatusForbidden, "The sign-in form was out of date. Try again.")
		return
	}
	key := strings.TrimSpace(r.PostFormValue("token"))
	if key == "" {
		h.renderSignIn(w, r, http.StatusBadRequest, "Enter an API token.")
		return
	}
	// The API's checks: keys are 40 hex digits; anything far off is not
	// looked up.
	var u webhook.User
	err = webhook.ErrUnauthenticated
	if len(key) <= 256 && printableASCII(key) {
		u, err = h.deps.Store.Authenticate(r.Context(), key)
	}
	var id string
	var sess webhook.Session
	if err == nil {
		id, sess, err = h.deps.Store.CreateSession(r.Context(), key, h.cfg.SessionTTL)
	}
	switch {
	case errors.Is(err, webhook.ErrUnauthenticated):
		h.renderSignIn(w, r, http.StatusUnauthorized, "That token is not valid (unknown or revoked).")
		return
	case err != nil:
		h.log.WarnContext(r.Context(), "console: sign-in failed", "error", err)
		h.renderSignIn(w, r, http.StatusServiceUnavailable, "The database is unavailable; try again shortly.")
		return
	}
	h.log.InfoContext(r.Context(), "console: signed in", "user", u.Username)
	http.SetCookie(w, h.cookie(r, signInCookie, "", time.Time{}))
	http.SetCookie(w, h.cookie(r, sessionCookie, id, sess.ExpiresAt))
	http.Redirect(w, r, "/hooks", http.StatusSeeOther)
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, rq *request) error {
	if rq.sess.Portal {
		if err := h.deps.Store.DeletePortalSession(r.Context(), rq.id); err != nil {
			return err
		}
		http.SetCookie(w, h.portalCookieOf("", time.Time{}))
		h.errorPage(w, r, nil, http.StatusOK, "The portal session has ended.")
		return nil
	}
	if err := h.deps.Store.DeleteSession(r.Context(), rq.id); err != nil {
		return err
	}
	http.SetCookie(w, h.cookie(r, sessionCookie, "", time.Time{}))
	http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// clientIP is the address the connection came from. Forwarding headers
// are not trusted: behind a proxy every client shares the proxy's limit.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter is a token bucket per client address: perMinute attempts in a
// burst, refilled evenly over a minute. It remembers at most maxClients
// addresses; when full it forgets those whose bucket is full again, and
// if none is, refuses new addresses until one is (failing closed).
type limiter struct {
	mu        sync.Mutex
	perMinute float64
	now       func() time.Time
	buckets   map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

const maxClients = 10000

func newLimiter(perMinute int, now func() time.Time) *limiter {
	return &limiter{perMinute: float64(perMinute), now: now, buckets: map[string]*bucket{}}
}

// allow takes one attempt from ip's bucket, or says how long until one is
// available.
func (l *limiter) allow(ip string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[ip]
	if !ok {
		if len(l.buckets) >= maxClients {
			for k, o := range l.buckets {
				if l.refill(o, now) >= l.perMinute {
					delete(l.buckets, k)
				}
			}
			if len(l.buckets) >= maxClients {
				return time.Minute, false
			}
		}
		b = &bucket{tokens: l.perMinute, at: now}
		l.buckets[ip] = b
	}
	b.tokens, b.at = l.refill(b, now), now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / l.perMinute * float64(time.Minute)), false
	}
	b.tokens--
	return 0, true
}

func (l *limiter) refill(b *bucket, now time.Time) float64 {
	return min(l.perMinute, b.tokens+now.Sub(b.at).Minutes()*l.perMinute)
}
