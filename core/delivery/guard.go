package delivery

import (
	"fmt"
	"net/netip"
	"syscall"
)

// blockedNetworks are the address ranges a target may not reach unless
// allowed: everything that is not the public internet. IPv4-mapped IPv6
// addresses are unmapped before the check, so ::ffff:127.0.0.1 is loopback.
var blockedNetworks = mustPrefixes(
	"0.0.0.0/8",       // "this network", includes the unspecified 0.0.0.0
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // carrier-grade NAT
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, includes cloud metadata 169.254.169.254
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments
	"192.168.0.0/16",  // private
	"198.18.0.0/15",   // benchmarking
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, includes broadcast
	"::/96",           // unspecified, loopback and deprecated IPv4-compatible
	"64:ff9b:1::/48",  // local-use IPv4/IPv6 translation
	"fc00::/7",        // unique local (private)
	"fe80::/10",       // link-local
	"fec0::/10",       // deprecated site-local
	"ff00::/8",        // multicast
	"2001:db8::/32",   // documentation
	"100::/64",        // discard-only
	"::ffff:0:0:0/96", // IPv4-translated
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
}

func (e *BlockedError) Error() string {
	if e.Denied {
		return fmt.Sprintf("refused: address %s is in delivery.deny_networks", e.Addr)
	}
	return fmt.Sprintf("refused: address %s is in a blocked network (allow it with delivery.allow_networks)", e.Addr)
}

// guard decides which resolved addresses targets may connect to.
type guard struct {
	allow, deny []netip.Prefix
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
	a = a.Unmap().WithZone("")
	for _, p := range g.deny {
		if p.Contains(a) {
			return &BlockedError{Addr: a, Denied: true}
		}
	}
	for _, p := range g.allow {
		if p.Contains(a) {
			return nil
		}
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return &BlockedError{Addr: a}
	}
	for _, p := range blockedNetworks {
		if p.Contains(a) {
			return &BlockedError{Addr: a}
		}
	}
	// NAT64 and 6to4 addresses carry an IPv4 address a gateway will reach.
	if v4, ok := embeddedIPv4(a); ok {
		if err := g.check(v4); err != nil {
			return &BlockedError{Addr: a}
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
