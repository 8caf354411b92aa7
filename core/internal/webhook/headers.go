package webhook

import "strings"

// protectedHeaders are the folded names (see HeaderKey) a hook's
// additional_headers may not set: Whisperer sets them on every delivery,
// config.auth sets Authorization, or the HTTP client owns them (a stored
// value would be dropped or break the request). User-Agent may be set.
var protectedHeaders = map[string]bool{
	"content-type": true, "content-length": true, "content-encoding": true,
	"transfer-encoding": true, "host": true, "authorization": true,
	"connection": true, "keep-alive": true, "te": true, "trailer": true,
	"upgrade": true, "expect": true,
}

// protectedPrefixes are the folded prefixes of protected names: Whisperer's
// own headers and signatures, and the proxy's.
var protectedPrefixes = []string{"x-whisperer-", "webhook-", "proxy-"}

// HeaderKey folds a header name the way receivers may: case-insensitively
// (RFC 9110) and with "_" read as "-" (CGI, nginx with underscores_in_headers,
// many frameworks), so names equal under HeaderKey are one header to them.
func HeaderKey(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// ProtectedHeader reports whether additional_headers may not set name, in
// any spelling HeaderKey folds together. The API refuses such names and the
// sender drops them, so both use this one list.
func ProtectedHeader(name string) bool {
	k := HeaderKey(name)
	if protectedHeaders[k] {
		return true
	}
	for _, p := range protectedPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// ValidHeaderName reports whether name is an RFC 9110 token of at most 256
// bytes: what additional_headers and a transform may name.
func ValidHeaderName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// The headers that carry a delivery's signatures (docs/RECEIVING.md): the
// sender sets them, and a dry run shows them only to the hook's owner,
// since they are made with the owner's secret over the caller's payload.
const (
	SignatureHeader         = "X-Whisperer-Signature"
	StandardSignatureHeader = "Webhook-Signature"
)
