package delivery

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Config tunes a Dispatcher and its Sender. The zero value is usable after
// WithDefaults.
type Config struct {
	// Workers is the number of concurrent deliveries. Defaults to 64.
	Workers int
	// BatchSize bounds how many events one claim takes and how many results
	// one write-back holds. Defaults to 100.
	BatchSize int
	// Claimers is the number of concurrent claim loops. More than one can
	// hide a claim's round trips to a remote PostgreSQL; SQLite claims one
	// at a time anyway. Defaults to 1.
	Claimers int
	// PollInterval is how often an idle dispatcher looks for due retries and
	// expired leases when nothing wakes it. Defaults to 1s.
	PollInterval time.Duration
	// Lease is how long a claimed event stays reserved for this dispatcher.
	// A claimed event may wait for one attempt before its own, so it must be
	// at least twice ConnectTimeout+ReadTimeout. Defaults to
	// 2*(ConnectTimeout+ReadTimeout) + 30s.
	Lease time.Duration
	// ConnectTimeout bounds dialing and the TLS handshake. Defaults to 10s.
	ConnectTimeout time.Duration
	// ReadTimeout bounds waiting for the response headers; the whole attempt
	// (body included) is bounded by ConnectTimeout+ReadTimeout. Defaults to 10s.
	ReadTimeout time.Duration
	// MaxRetries is the number of attempts in a series after which an event
	// is given up. Defaults to 18 (dj-whisperer's MAX_RETRY_COUNT).
	MaxRetries int
	// DefaultCountdown is used when a hook's countdown fails (for example a
	// plugin that was unloaded). Defaults to exponential with base 2.
	DefaultCountdown webhook.CountdownConfig
	// MaxResponseBytes is how much of a response body is read and kept.
	// Defaults to 64 KiB.
	MaxResponseBytes int
	// AllowNetworks are CIDRs that targets may resolve to even though they
	// are loopback, private or otherwise blocked. Defaults to none.
	AllowNetworks []string
	// DenyNetworks are CIDRs targets may never resolve to, even public or
	// allowed ones. Defaults to none.
	DenyNetworks []string
	// CallbackWorkers is the number of goroutines running callbacks.
	// Defaults to 8.
	CallbackWorkers int
	// CallbackQueue bounds the callbacks waiting to run, per source (plugin
	// file); when a source's queue is full, its new ones are dropped, logged
	// and counted. Defaults to 1024.
	CallbackQueue int
	// CallbackTimeout bounds one callback. Defaults to 5s, the plugin
	// host's (plugin.Config.CallbackTimeout): the server sets both from
	// plugins.callback_timeout.
	CallbackTimeout time.Duration
	// Owner names this dispatcher's leases. Defaults to hostname-pid-random.
	Owner string
	// Resolver looks up target hosts. Defaults to the system's (nil): a
	// test sets one that never leaves the machine.
	Resolver *net.Resolver
	// Now is the clock for attempt times and retry schedules. Defaults to
	// time.Now.
	Now func() time.Time
	// Observer, when set, is told about every recorded attempt (metrics).
	Observer Observer
	// Plugins, when set, holds back the jobs of hooks whose countdown or
	// callback belongs to a plugin still loading (see await.go).
	Plugins Plugins
	// Transforms applies hooks' transforms before each attempt is signed
	// (transform.go). Nil fails every attempt of a hook that has one.
	Transforms Transforms
}

// Observer watches attempts as they are decided. Its methods must be fast
// and safe for concurrent use: they run on the delivery path.
type Observer interface {
	// ObserveAttempt reports one attempt: its outcome (the state it left
	// the event in), its response status (0 when none) and its duration.
	ObserveAttempt(state webhook.State, status int, d time.Duration)
}

// Defaults of Config. They are the server's defaults too: core/internal/config
// takes its delivery.* and request_timeout defaults from WithDefaults.
const (
	DefaultWorkers          = 64
	DefaultBatchSize        = 100
	DefaultPollInterval     = time.Second
	DefaultConnectTimeout   = 10 * time.Second
	DefaultReadTimeout      = 10 * time.Second
	DefaultMaxRetries       = 18
	DefaultMaxResponseBytes = 64 << 10
	DefaultCallbackWorkers  = 8
	// LeaseMargin is how much longer than two requests a derived lease
	// lasts: time to record the attempt after the response.
	LeaseMargin = 30 * time.Second
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Workers = cmp.Or(c.Workers, DefaultWorkers)
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.Claimers = cmp.Or(c.Claimers, 1)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, DefaultConnectTimeout)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, DefaultReadTimeout)
	c.Lease = cmp.Or(c.Lease, 2*(c.ConnectTimeout+c.ReadTimeout)+LeaseMargin)
	c.MaxRetries = cmp.Or(c.MaxRetries, DefaultMaxRetries)
	if c.DefaultCountdown.Choice == "" {
		c.DefaultCountdown = webhook.DefaultCountdown()
	}
	c.MaxResponseBytes = cmp.Or(c.MaxResponseBytes, DefaultMaxResponseBytes)
	c.CallbackWorkers = cmp.Or(c.CallbackWorkers, DefaultCallbackWorkers)
	c.CallbackQueue = cmp.Or(c.CallbackQueue, 1024)
	c.CallbackTimeout = cmp.Or(c.CallbackTimeout, webhook.DefaultCallbackTimeout)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports what is wrong with c (after WithDefaults).
func (c Config) Validate() error {
	var errs []error
	positive := func(name string, v int64) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("delivery.%s must be positive, got %d", name, v))
		}
	}
	positive("workers", int64(c.Workers))
	positive("batch_size", int64(c.BatchSize))
	positive("claimers", int64(c.Claimers))
	positive("max_retries", int64(c.MaxRetries))
	positive("max_response_bytes", int64(c.MaxResponseBytes))
	positive("callback_workers", int64(c.CallbackWorkers))
	positive("callback_queue", int64(c.CallbackQueue))
	if c.ConnectTimeout <= 0 || c.ReadTimeout <= 0 {
		errs = append(errs, fmt.Errorf("request_timeout must be positive, got connect %s, read %s", c.ConnectTimeout, c.ReadTimeout))
	}
	if c.Lease < 2*(c.ConnectTimeout+c.ReadTimeout) {
		errs = append(errs, fmt.Errorf("delivery.lease (%s) must be at least twice the request timeout (%s)", c.Lease, c.ConnectTimeout+c.ReadTimeout))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, fmt.Errorf("delivery.poll_interval must be positive, got %s", c.PollInterval))
	}
	for _, nets := range [][]string{c.AllowNetworks, c.DenyNetworks} {
		if _, err := parseNetworks(nets); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func parseNetworks(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			// A bare address allows just that address.
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("delivery.allow_networks: %q is not a CIDR (like 10.0.0.0/8) or an address", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			// Addresses are unmapped before the check, so compare like with like.
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
