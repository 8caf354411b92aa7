package api

import (
	"net/http"
	"strings"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

type userKey struct{}

// user returns the authenticated user of a request that passed resource's
// authentication.
func user(r *http.Request) webhook.User {
	u, _ := r.Context().Value(userKey{}).(webhook.User)
	return u
}

// scope is what the request's user may see: its own rows, or all of them
// for an admin.
func scope(r *http.Request) webhook.Scope {
	u := user(r)
	return webhook.Scope{UserID: u.ID, All: u.Role == webhook.RoleAdmin}
}

// authenticate reads "Authorization: Token <key>" (or Bearer) with DRF
// TokenAuthentication's messages.
func (s *Server) authenticate(r *http.Request) (webhook.User, error) {
	parts := strings.Fields(r.Header.Get("Authorization"))
	if len(parts) == 0 || (!strings.EqualFold(parts[0], "Token") && !strings.EqualFold(parts[0], "Bearer")) {
		return webhook.User{}, &authError{"Authentication credentials were not provided."}
	}
	switch {
	case len(parts) == 1:
		return webhook.User{}, &authError{"Invalid token header. No credentials provided."}
	case len(parts) > 2:
		return webhook.User{}, &authError{"Invalid token header. Token string should not contain spaces."}
	}
	key := parts[1]
	// Keys are 40 hex digits; anything far off is not looked up.
	if len(key) > 256 || !printableASCII(key) {
		return webhook.User{}, &authError{"Invalid token."}
	}
	u, err := s.deps.Store.Authenticate(r.Context(), key)
	if err != nil {
		if err == webhook.ErrUnauthenticated {
			return webhook.User{}, &authError{"Invalid token."}
		}
		return webhook.User{}, err
	}
	return u, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
