package api

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// A hook whose target the delivery guard refuses fails every attempt. A
// literal address is known at once: such a hook is refused. A name may
// resolve differently at delivery time (and the guard checks again
// then), so it is accepted, with a warning when it resolves to a blocked
// address now.

// resolveTimeout bounds the lookup of a target's name when a hook is
// saved: a slow resolver delays the answer, never blocks it.
const resolveTimeout = 2 * time.Second

// targetHost is a valid target_url's host, and its address when the host
// is a literal IP address.
func targetHost(raw string) (host string, addr netip.Addr, literal bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", netip.Addr{}, false
	}
	host = u.Hostname()
	addr, err = netip.ParseAddr(host)
	return host, addr, err == nil
}

// checkTargetAddress refuses a target_url whose host is a literal address
// that deliveries may not reach (Deps.TargetPolicy).
func (s *Server) checkTargetAddress(in *hookInput, errs *webhook.ValidationError) {
	if s.deps.TargetPolicy == nil || !in.has["target_url"] || errs.Fields["target_url"] != nil {
		return
	}
	if _, addr, literal := targetHost(in.targetURL); literal {
		if why := s.deps.TargetPolicy(addr); why != "" {
			errs.Add("target_url", "Deliveries to this address would be refused: "+why+".")
		}
	}
}

// targetWarnings are the warnings of a hook saved with target_url named
// by host: one per address the name resolves to now that deliveries may
// not reach. A name that does not resolve gets none (it may later).
func (s *Server) targetWarnings(ctx context.Context, in *hookInput) []string {
	if s.deps.TargetPolicy == nil || !in.has["target_url"] {
		return nil
	}
	host, _, literal := targetHost(in.targetURL)
	if literal || host == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	var out []string
	seen := map[netip.Addr]bool{}
	for _, a := range addrs {
		a = a.Unmap()
		if seen[a] {
			continue
		}
		seen[a] = true
		if why := s.deps.TargetPolicy(a); why != "" {
			out = append(out, fmt.Sprintf("target_url: %s resolves to %s, and deliveries to it will be refused: %s.",
				strings.ToLower(host), a, why))
		}
	}
	return out
}

// savedHook is a created or updated hook as answered: the hook, and
// Whisperer's warnings about it when there are any.
type savedHook struct {
	hookJSON
	Warnings []string `json:"warnings,omitempty"`
}
