package delivery

import (
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
		{"64:ff9b::808:808", false},  // NAT64 of 8.8.8.8
		{"2002:7f00:1::", true},      // 6to4 of loopback
		{"2002:808:808::", false},
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
