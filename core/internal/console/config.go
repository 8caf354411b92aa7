package console

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
	// APIBase is the API's base path (server.base_path), where Deps.API is
	// asked to serve writes. Required: core/app passes the API's.
	APIBase string
	// MaxRetries is how many attempts an event gets (delivery.max_retries,
	// set by core/app): the schedule preview's length. Required: the
	// dispatcher owns its default.
	MaxRetries int

	// FrameAncestors are the origins (scheme://host[:port]) whose pages may
	// embed the tenant portal in an iframe (key console.frame_ancestors);
	// the CSP's frame-ancestors lists them on portal pages. Empty, the
	// default, forbids framing.
	FrameAncestors []string
	// AppName, LogoURL and AccentColor brand the console and the portal
	// (keys console.app_name, console.logo_url, console.accent_color):
	// the name in the header (default "Whisperer"), a logo image from an
	// https URL, and the accent colour as #rrggbb. Empty logo and colour
	// keep the console's own.
	AppName, LogoURL, AccentColor string
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.SessionTTL = cmp.Or(c.SessionTTL, 12*time.Hour)
	c.SignInPerMinute = cmp.Or(c.SignInPerMinute, 10)
	c.AppName = cmp.Or(c.AppName, "Whisperer")
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
	if n := utf8.RuneCountInString(c.AppName); n > 64 || !utf8.ValidString(c.AppName) || strings.ContainsFunc(c.AppName, unicode.IsControl) {
		return fmt.Errorf("console.app_name must be at most 64 printable characters, got %q", c.AppName)
	}
	if c.LogoURL != "" {
		u, err := url.Parse(c.LogoURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(c.LogoURL) > 2048 ||
			strings.ContainsAny(c.LogoURL, " \t\r\n\"'<>;,\\") {
			return fmt.Errorf("console.logo_url must be an https URL (at most 2048 characters, no spaces, quotes or ;), got %q", c.LogoURL)
		}
	}
	if c.AccentColor != "" && !accentColor.MatchString(c.AccentColor) {
		return fmt.Errorf("console.accent_color must be a colour as #rrggbb, got %q", c.AccentColor)
	}
	if len(c.FrameAncestors) > 32 {
		return fmt.Errorf("console.frame_ancestors lists %d origins, at most 32", len(c.FrameAncestors))
	}
	for _, o := range c.FrameAncestors {
		if _, err := origin(o); err != nil {
			return fmt.Errorf("console.frame_ancestors: %w", err)
		}
	}
	return nil
}

var accentColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// origin checks that o is an origin, scheme://host[:port] with scheme
// http or https and nothing else, as a CSP source expression names one.
func origin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery ||
		strings.ContainsAny(o, " \t\r\n\"';,*\\") || len(o) > 255 {
		return "", fmt.Errorf("%q is not an origin like https://app.example.com[:port]", o)
	}
	return u.Scheme + "://" + u.Host, nil
}
