package delivery

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// blockedNetworks are the address ranges a target may not reach unless
// allowed: the whole IANA IPv4 and IPv6 Special-Purpose Address Registries
// — IPv4 as last updated 2020-09-04, IPv6 as last updated 2024-10-22 plus
// 100:0:0:1::/64 (RFC 9780, 2025) — globally reachable entries included
// (anycast and AS112 services are not webhook receivers), and the
// multicast ranges. An IPv4-mapped address is checked as itself (it is in
// ::ffff:0:0/96) and as the IPv4 address it maps.
var blockedNetworks = mustPrefixes(
	// IPv4 Special-Purpose Address Registry.
	"0.0.0.0/8",          // "this network"; 0.0.0.0/32 "this host"
	"10.0.0.0/8",         // private-use
	"100.64.0.0/10",      // shared address space (carrier-grade NAT)
	"127.0.0.0/8",        // loopback
	"169.254.0.0/16",     // link local, includes cloud metadata 169.254.169.254
	"172.16.0.0/12",      // private-use
	"192.0.0.0/24",       // IETF protocol assignments
	"192.0.0.0/29",       //   IPv4 service continuity prefix (DS-Lite)
	"192.0.0.8/32",       //   IPv4 dummy address
	"192.0.0.9/32",       //   Port Control Protocol anycast
	"192.0.0.10/32",      //   TURN anycast
	"192.0.0.170/32",     //   NAT64/DNS64 discovery
	"192.0.0.171/32",     //   NAT64/DNS64 discovery
	"192.0.2.0/24",       // documentation (TEST-NET-1)
	"192.31.196.0/24",    // AS112-v4
	"192.52.193.0/24",    // AMT
	"192.88.99.0/24",     // deprecated 6to4 relay anycast
	"192.168.0.0/16",     // private-use
	"192.175.48.0/24",    // direct delegation AS112 service
	"198.18.0.0/15",      // benchmarking
	"198.51.100.0/24",    // documentation (TEST-NET-2)
	"203.0.113.0/24",     // documentation (TEST-NET-3)
	"240.0.0.0/4",        // reserved
	"255.255.255.255/32", // limited broadcast
	// IPv4 multicast (its own registry).
	"224.0.0.0/4",
	// IPv6 Special-Purpose Address Registry.
	"::1/128",           // loopback
	"::/128",            // unspecified
	"::ffff:0:0/96",     // IPv4-mapped
	"64:ff9b::/96",      // IPv4-IPv6 translation (NAT64 well-known prefix)
	"64:ff9b:1::/48",    // IPv4-IPv6 translation, local use
	"100::/64",          // discard-only
	"100:0:0:1::/64",    // dummy IPv6 prefix
	"2001::/23",         // IETF protocol assignments
	"2001::/32",         //   TEREDO
	"2001:1::1/128",     //   Port Control Protocol anycast
	"2001:1::2/128",     //   TURN anycast
	"2001:1::3/128",     //   DNS-SD service registration protocol anycast
	"2001:2::/48",       //   benchmarking
	"2001:3::/32",       //   AMT
	"2001:4:112::/48",   //   AS112-v6
	"2001:10::/28",      //   deprecated ORCHID
	"2001:20::/28",      //   ORCHIDv2
	"2001:30::/28",      //   drone remote ID entity tags
	"2001:db8::/32",     // documentation
	"2002::/16",         // 6to4
	"2620:4f:8000::/48", // direct delegation AS112 service
	"3fff::/20",         // documentation
	"5f00::/16",         // segment routing (SRv6) SIDs
	"fc00::/7",          // unique-local
	"fe80::/10",         // link-local unicast
	// Not in the registry, never a receiver: deprecated IPv4-compatible
	// addresses and site-local, and IPv6 multicast.
	"::/96",
	"fec0::/10",
	"ff00::/8",
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// BlockedError is the refusal of a connection to a blocked address.
type BlockedError struct {
	Addr netip.Addr
	// Denied is set when delivery.deny_networks refused it.
	Denied bool
	// Network is the range that refused it.
	Network netip.Prefix
}

func (e *BlockedError) Error() string {
	if e.Denied {
		return fmt.Sprintf("refused: address %s is in delivery.deny_networks", e.Addr)
	}
	return fmt.Sprintf("refused: address %s is in a blocked network (allow it with delivery.allow_networks)", e.Addr)
}

// Reason says, for a person saving a hook, why deliveries cannot reach
// the address and which setting would change that.
func (e *BlockedError) Reason() string {
	if e.Denied {
		return fmt.Sprintf("%s is in %s, which delivery.deny_networks refuses", e.Addr, e.Network)
	}
	return fmt.Sprintf("%s is in %s, a special-purpose network (loopback, private, link-local or reserved) "+
		"that deliveries may not reach unless delivery.allow_networks allows it", e.Addr, e.Network)
}

// TargetPolicy is the guard of cfg's networks as a function, for a check
// before any delivery (the API's, when a hook is saved): "" when
// deliveries may reach addr, else BlockedError.Reason. The guard stays
// the one owner of the ranges. cfg must be valid.
func TargetPolicy(cfg Config) func(addr netip.Addr) string {
	g := newGuard(cfg)
	return func(addr netip.Addr) string {
		var blocked *BlockedError
		if errors.As(g.check(addr), &blocked) {
			return blocked.Reason()
		}
		return ""
	}
}

// guard decides which resolved addresses targets may connect to.
type guard struct {
	allow, deny []netip.Prefix
}

// newGuard is the guard of cfg's networks; cfg.Validate has checked them.
func newGuard(cfg Config) *guard {
	allow, _ := parseNetworks(cfg.AllowNetworks)
	deny, _ := parseNetworks(cfg.DenyNetworks)
	return &guard{allow: allow, deny: deny}
}

// control is a net.Dialer Control function. It runs after name resolution,
// on the very address about to be connected, so DNS rebinding cannot slip a
// private address past it.
func (g *guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused: cannot parse dial address %q: %w", address, err)
	}
	return g.check(ap.Addr())
}

func (g *guard) check(a netip.Addr) error {
	raw := a.WithZone("")
	a = raw.Unmap()
	for _, p := range g.deny {
		if p.Contains(a) {
			return &BlockedError{Addr: a, Denied: true, Network: p}
		}
	}
	// NAT64 and 6to4 addresses carry an IPv4 address a gateway will reach:
	// it must pass too, even when the prefix itself is allowed.
	if v4, ok := embeddedIPv4(a); ok {
		var blocked *BlockedError
		if errors.As(g.check(v4), &blocked) {
			return &BlockedError{Addr: a, Denied: blocked.Denied, Network: blocked.Network}
		}
	}
	for _, p := range g.allow {
		if p.Contains(a) {
			return nil
		}
	}
	for _, p := range blockedNetworks {
		if p.Contains(raw) || p.Contains(a) {
			return &BlockedError{Addr: a, Network: p}
		}
	}
	return nil
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}
