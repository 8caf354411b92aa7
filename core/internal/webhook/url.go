package webhook

import (
	"net/url"
	"strings"
)

// RedactedUserinfo stands for the credentials of a target URL that has
// them (written by a release before they were refused): it is what the API
// and the CLI show instead. A PUT that sends it back is refused, as any URL
// with credentials is, so a round trip cannot store it.
const RedactedUserinfo = "***"

// RedactURL returns s with its userinfo, if any, replaced by
// RedactedUserinfo; other URLs, including ones that do not parse, come back
// unchanged.
func RedactURL(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil // url.User would escape the marker
	return strings.Replace(u.String(), "//", "//"+RedactedUserinfo+"@", 1)
}

// URLOrigin returns s's scheme://host[:port] alone: no credentials, path,
// query or fragment, which may carry secrets (Slack's and Discord's
// webhook URLs hold a token in the path). "" when s does not parse as an
// absolute URL.
func URLOrigin(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
