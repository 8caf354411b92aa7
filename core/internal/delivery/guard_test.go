package delivery

import (
	"errors"
	"net/netip"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	allow, err := parseNetworks([]string{"10.1.0.0/16", "::ffff:192.168.7.0/120", "fd00::1"})
	if err != nil {
		t.Fatal(err)
	}
	deny, err := parseNetworks([]string{"9.9.9.0/24", "10.1.9.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	g := &guard{allow: allow, deny: deny}
	for _, tc := range []struct {
		addr    string
		blocked bool
	}{
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"9.9.9.9", true},  // public but denied
		{"10.1.9.1", true}, // allowed network, denied subnet: deny wins
		{"2606:4700:4700::1111", false},
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"0.0.0.0", true},
		{"::", true},
		{"10.0.0.1", true},
		{"10.1.2.3", false}, // allowed
		{"172.16.5.4", true},
		{"192.168.1.1", true},
		{"192.168.7.9", false}, // allowed through a mapped prefix
		{"169.254.169.254", true},
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		{"100.128.0.1", false},
		{"224.0.0.1", true},
		{"255.255.255.255", true},
		{"fc00::1", true},
		{"fd00::1", false}, // allowed as a bare address
		{"fd00::2", true},
		{"fe80::1", true},
		{"ff02::1", true},
		{"64:ff9b::a9fe:a9fe", true}, // NAT64 of metadata
		{"64:ff9b::808:808", true},   // NAT64 of 8.8.8.8: the prefix is in the registry
		{"2002:7f00:1::", true},      // 6to4 of loopback
		{"2002:808:808::", true},     // 6to4 is in the registry
	} {
		err := g.check(netip.MustParseAddr(tc.addr))
		if (err != nil) != tc.blocked {
			t.Errorf("%s: err = %v, want blocked %v", tc.addr, err, tc.blocked)
		}
	}
}

func TestParseNetworksRejectsGarbage(t *testing.T) {
	if _, err := parseNetworks([]string{"10.0.0.0/33"}); err == nil {
		t.Error("10.0.0.0/33 accepted")
	}
	if _, err := parseNetworks([]string{"localhost"}); err == nil {
		t.Error("localhost accepted")
	}
}

// The guard refuses every address of the IANA IPv4 and IPv6 Special-Purpose
// Address Registries (and multicast) with nothing allowed: each entry's
// first and last addresses, the assignments inside larger ones, and the
// public neighbours just outside, which pass. Unit test only: nothing is
// dialled.
func TestGuardBlocksSpecialPurposeRegistries(t *testing.T) {
	blocked := []string{
		// IPv4.
		"0.0.0.0", "0.255.255.255",
		"10.0.0.0", "10.255.255.255",
		"100.64.0.0", "100.127.255.255",
		"127.0.0.0", "127.0.0.1", "127.255.255.255",
		"169.254.0.0", "169.254.169.254", "169.254.255.255",
		"172.16.0.0", "172.31.255.255",
		"192.0.0.0", "192.0.0.7", "192.0.0.8", "192.0.0.9", "192.0.0.10", "192.0.0.170", "192.0.0.171", "192.0.0.255",
		"192.0.2.0", "192.0.2.1", "192.0.2.255",
		"192.31.196.0", "192.31.196.255",
		"192.52.193.0", "192.52.193.255",
		"192.88.99.0", "192.88.99.255",
		"192.168.0.0", "192.168.255.255",
		"192.175.48.0", "192.175.48.255",
		"198.18.0.0", "198.19.255.255",
		"198.51.100.0", "198.51.100.7", "198.51.100.255",
		"203.0.113.0", "203.0.113.9", "203.0.113.255",
		"224.0.0.0", "239.255.255.255",
		"240.0.0.0", "255.255.255.254", "255.255.255.255",
		// IPv6.
		"::", "::1", "::2", "::ffff:0.0.0.0", "::ffff:8.8.8.8", "::ffff:255.255.255.255",
		"64:ff9b::", "64:ff9b::808:808", "64:ff9b::ffff:ffff",
		"64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
		"100::", "100::ffff:ffff:ffff:ffff",
		"100:0:0:1::", "100:0:0:1:ffff:ffff:ffff:ffff",
		"2001::", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:1::1", "2001:1::2", "2001:1::3",
		"2001:2::", "2001:2:0:ffff:ffff:ffff:ffff:ffff", "2001:3::", "2001:3:ffff:ffff:ffff:ffff:ffff:ffff",
		"2001:4:112::", "2001:4:112:ffff:ffff:ffff:ffff:ffff", "2001:10::", "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff",
		"2001:20::", "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", "2001:30::", "2001:3f:ffff:ffff:ffff:ffff:ffff:ffff",
		"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
		"2001:db8::", "2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
		"2002::", "2002:808:808::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"2620:4f:8000::", "2620:4f:8000:ffff:ffff:ffff:ffff:ffff",
		"3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
		"5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"fc00::", "fd12:3456::1", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"fe80::", "fe80::1%eth0", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"fec0::", "ff00::", "ff02::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	}
	public := []string{
		"1.0.0.0", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255", "128.0.0.0",
		"169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0", "191.255.255.255", "192.0.1.0",
		"192.0.1.255", "192.0.3.0", "192.31.195.255", "192.31.197.0", "192.52.192.255", "192.52.194.0",
		"192.88.98.255", "192.88.100.0", "192.167.255.255", "192.169.0.0", "192.175.47.255", "192.175.49.0",
		"198.17.255.255", "198.20.0.0", "198.51.99.255", "198.51.101.0", "203.0.112.255", "203.0.114.0",
		"223.255.255.255",
		"64:ff9b::1:0:0", "64:ff9b:2::", "2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::",
		"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::", "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::",
		"2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", "2620:4f:8001::", "3fff:1000::", "2606:4700:4700::1111",
	}
	g := &guard{}
	for _, a := range blocked {
		var be *BlockedError
		if err := g.check(netip.MustParseAddr(a)); !errors.As(err, &be) || be.Denied {
			t.Errorf("%s: err = %v, want blocked", a, err)
		}
	}
	for _, a := range public {
		if err := g.check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s: err = %v, want allowed", a, err)
		}
	}
}

// Allowing a range lets targets in it through, as loopback tests need;
// allowing NAT64 or 6to4 does not open the IPv4 address they carry, and a
// deny wins over both.
func TestGuardAllowAndDeny(t *testing.T) {
	allow, err := parseNetworks([]string{"127.0.0.0/8", "::1", "192.0.2.0/24", "64:ff9b::/96", "2002::/16"})
	if err != nil {
		t.Fatal(err)
	}
	deny, err := parseNetworks([]string{"8.8.4.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	g := &guard{allow: allow, deny: deny}
	for _, tc := range []struct {
		addr    string
		blocked bool
		denied  bool
	}{
		{"127.0.0.1", false, false},
		{"::1", false, false},
		{"::ffff:127.0.0.1", false, false},
		{"192.0.2.10", false, false},
		{"198.51.100.1", true, false},
		{"64:ff9b::808:808", false, false},  // NAT64 of 8.8.8.8, allowed prefix
		{"64:ff9b::a9fe:a9fe", true, false}, // NAT64 of 169.254.169.254
		{"64:ff9b::c000:20a", false, false}, // NAT64 of 192.0.2.10, which is allowed
		{"64:ff9b::808:404", true, true},    // NAT64 of a denied address
		{"2002:a00:1::", true, false},       // 6to4 of 10.0.0.1
		{"2002:808:808::1", false, false},   // 6to4 of 8.8.8.8, allowed prefix
		{"8.8.4.4", true, true},
		{"::ffff:8.8.4.4", true, true},
	} {
		err := g.check(netip.MustParseAddr(tc.addr))
		var be *BlockedError
		if errors.As(err, &be) != tc.blocked || (be != nil && be.Denied != tc.denied) {
			t.Errorf("%s: err = %v, want blocked %v denied %v", tc.addr, err, tc.blocked, tc.denied)
		}
	}
}
