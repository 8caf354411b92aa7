package app

import (
	"github.com/whisperer/whisperer/core/internal/api"
	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/console"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/plugin"
	"github.com/whisperer/whisperer/core/internal/retention"
	"github.com/whisperer/whisperer/core/internal/store"
)

// OwnedDefaults fills the settings that core/internal/config maps onto
// other packages with those packages' defaults, so each default is
// written once, in its owner's WithDefaults (config may not import its
// siblings; this is the wiring point that may). Derived values stay zero
// for their owner to derive: the lease (delivery) and the compilation
// cache's directory (plugin).
func OwnedDefaults(c *config.Config) {
	a := api.Config{}.WithDefaults()
	c.Server.BasePath, c.Server.MaxBodyBytes, c.Server.PublicURL = a.BasePath, a.MaxBodyBytes, a.PublicURL
	c.Security.SecretRotationOverlap = a.SecretRotationOverlap
	c.Limits.HooksPerUser, c.Limits.MaxPageSize = a.HooksPerUser, a.MaxPageSize

	d := delivery.Config{}.WithDefaults()
	c.RequestTimeout = config.RequestTimeout{Connect: d.ConnectTimeout, Read: d.ReadTimeout}
	c.Delivery.Workers, c.Delivery.BatchSize, c.Delivery.MaxRetries = d.Workers, d.BatchSize, d.MaxRetries
	c.Delivery.DefaultRetryCountdown = d.DefaultCountdown
	c.Delivery.MaxResponseBytes = d.MaxResponseBytes
	c.Delivery.AllowNetworks, c.Delivery.DenyNetworks = d.AllowNetworks, d.DenyNetworks
	c.Delivery.PollInterval, c.Delivery.CallbackWorkers = d.PollInterval, d.CallbackWorkers

	p := plugin.Config{}.WithDefaults()
	c.Plugins.Dir = p.Dir
	c.Plugins.CallTimeout, c.Plugins.CallbackTimeout = p.CallTimeout, p.CallbackTimeout
	c.Plugins.MemoryLimitMB, c.Plugins.PoolSize, c.Plugins.IdleTimeout = p.MemoryLimitMB, p.PoolSize, p.IdleTimeout

	r := retention.Config{}.WithDefaults()
	c.Retention.Interval, c.Retention.BatchSize = r.Interval, r.BatchSize

	c.Database.MaxOpenConns = store.DefaultMaxOpenConns
	cs := console.Config{}.WithDefaults()
	c.Console.SessionTTL, c.Console.AppName = cs.SessionTTL, cs.AppName
	c.Console.FrameAncestors = append([]string{}, cs.FrameAncestors...) // none: no framing
}

// DefaultConfig is the configuration with nothing set: what LoadConfig
// gives without a file, environment or flags.
func DefaultConfig() *config.Config { return config.Default(OwnedDefaults) }
