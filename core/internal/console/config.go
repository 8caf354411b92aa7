package console

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config tunes the console. The zero value is usable.
type Config struct {
	// SessionTTL is how long a session lasts after sign-in (key
	// console.session_ttl). Defaults to 12h.
	SessionTTL time.Duration
	// SignInPerMinute is how many sign-in attempts one client address may
	// make per minute, in a burst or spread out. Defaults to 10.
	SignInPerMinute int
	// SecureCookies marks the cookies Secure even on requests that did not
	// arrive over TLS: for a node behind a proxy that terminates TLS
	// (core/app sets it when server.public_url is https). Requests over TLS
	// always get Secure cookies.
	SecureCookies bool
	// APIBase is the API's base path, where Deps.API is asked to serve
	// writes. Defaults to "/whisperer/".
	APIBase string
	// MaxRetries is how many attempts an event gets (delivery.max_retries,
	// set by core/app): the schedule preview's length. Defaults to 18.
	MaxRetries int
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.SessionTTL = cmp.Or(c.SessionTTL, 12*time.Hour)
	c.SignInPerMinute = cmp.Or(c.SignInPerMinute, 10)
	c.APIBase = cmp.Or(c.APIBase, "/whisperer/")
	c.MaxRetries = cmp.Or(c.MaxRetries, 18)
	return c
}

// Validate says what is wrong with c.
func (c Config) Validate() error {
	if c.SessionTTL < time.Minute || c.SessionTTL > 30*24*time.Hour {
		return fmt.Errorf("console: session TTL must be between 1m and 720h, got %v", c.SessionTTL)
	}
	if c.SignInPerMinute < 1 {
		return errors.New("console: SignInPerMinute must be positive")
	}
	if c.MaxRetries < 1 {
		return fmt.Errorf("console: MaxRetries must be positive, got %d", c.MaxRetries)
	}
	if !strings.HasPrefix(c.APIBase, "/") || !strings.HasSuffix(c.APIBase, "/") || c.APIBase == "/" {
		return fmt.Errorf("console: the API's base path must start and end with \"/\" and not be \"/\" (the console is there), got %q", c.APIBase)
	}
	return nil
}
