package plugin

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// MaxMemoryLimitMB is the largest memory_limit_mb: packed ptr<<32|len
// results stay positive as i64 only below 2 GiB (sdk/ABI.md).
const MaxMemoryLimitMB = 2048

// Config is the plugin host's configuration. Its defaults are the
// server's too: core/internal/config takes the plugins.* defaults from WithDefaults.
type Config struct {
	// Dir is the drop-in directory: every *.wasm file in it is a plugin. A
	// missing directory means no plugins. Defaults to "plugins".
	Dir string
	// CacheDir holds wazero's compilation cache so that a restart does not
	// recompile unchanged plugins. It is a pure cache (keyed by module hash
	// and runtime version), so it lives in the user's cache directory, shared
	// by every working directory. Defaults to DefaultCacheDir().
	CacheDir string
	// CallTimeout bounds one countdown or validator call. Defaults to 100ms.
	CallTimeout time.Duration
	// CallbackTimeout bounds one callback call, and instantiating a module
	// (its _initialize). Defaults to 5s.
	CallbackTimeout time.Duration
	// MemoryLimitMB caps each instance's linear memory, at most
	// MaxMemoryLimitMB. Defaults to 64.
	MemoryLimitMB int
	// PoolSize is the most instances of one plugin, and the most
	// countdown/validator calls and, separately, callbacks in flight across
	// all plugins (one plugin's callbacks: PoolSize-1, when above 1), which
	// bounds the host's memory; further calls wait. Idle instances of all
	// plugins keep at most PoolSize × (MemoryLimitMB + 64 KiB) between them
	// (idleBudget). Defaults to 4.
	PoolSize int
	// IdleTimeout is how long an instance may sit idle before it is
	// closed, and how long a plugin may go without calls before its
	// compiled module is released from memory too (the next call compiles
	// it again, from the compilation cache, in about 0.1 s for a Go guest).
	// Modules are released only while the compilation cache works: without
	// it a Go guest takes seconds to compile. Defaults to 30s.
	IdleTimeout time.Duration
	// Background makes Start return at once and load the directory in the
	// background (the server's case): Loading and Loaded tell when the
	// first load is done. Otherwise Start returns after it (the CLI's).
	// It is not a configuration key.
	Background bool
	// PollInterval is how often Dir is checked for added, changed and
	// removed files; negative disables watching (Reload still works).
	// Defaults to 2s. It is not a configuration key.
	PollInterval time.Duration
	// Observer, when set, is told about every plugin call (metrics).
	Observer Observer

	// jsonOnly serves callbacks the JSON document only, and transforms
	// without their record, even to modules exporting
	// whisperer_callback_record or whisperer_transform_record: tests
	// compare the two paths.
	jsonOnly bool
	// beforeCompile, when set, is called before a file is compiled: tests
	// hold a load there to see the host while it is in progress.
	beforeCompile func(file string)
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.Dir = cmp.Or(c.Dir, "plugins")
	c.CacheDir = cmp.Or(c.CacheDir, DefaultCacheDir())
	c.CallTimeout = cmp.Or(c.CallTimeout, 100*time.Millisecond)
	c.CallbackTimeout = cmp.Or(c.CallbackTimeout, webhook.DefaultCallbackTimeout)
	c.MemoryLimitMB = cmp.Or(c.MemoryLimitMB, 64)
	c.PoolSize = cmp.Or(c.PoolSize, 4)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, 30*time.Second)
	c.PollInterval = cmp.Or(c.PollInterval, 2*time.Second)
	return c
}

// DefaultCacheDir is os.UserCacheDir()/whisperer/plugins, or
// ".whisperer-cache" when the OS has no cache directory.
func DefaultCacheDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "whisperer", "plugins")
	}
	return ".whisperer-cache"
}

// Validate reports what is wrong with c, after WithDefaults.
func (c Config) Validate() error {
	var errs []error
	if c.CallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("plugins.call_timeout must be positive, got %s", c.CallTimeout))
	}
	if c.CallbackTimeout <= 0 {
		errs = append(errs, fmt.Errorf("plugins.callback_timeout must be positive, got %s", c.CallbackTimeout))
	}
	// Packed ptr<<32|len results stay positive as i64 only below 2 GiB.
	if c.MemoryLimitMB < 1 || c.MemoryLimitMB > MaxMemoryLimitMB {
		errs = append(errs, fmt.Errorf("plugins.memory_limit_mb must be between 1 and %d, got %d", MaxMemoryLimitMB, c.MemoryLimitMB))
	}
	if c.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("plugins.idle_timeout must be positive, got %s", c.IdleTimeout))
	}
	if c.PoolSize < 1 || c.PoolSize > 1024 {
		errs = append(errs, fmt.Errorf("plugins.pool_size must be between 1 and 1024, got %d", c.PoolSize))
	}
	return errors.Join(errs...)
}

func (c Config) memoryLimitPages() uint32 { return uint32(c.MemoryLimitMB) * 16 } // 64 KiB pages

// maxInput bounds one input document so that it cannot exhaust the guest.
func (c Config) maxInput() int { return c.MemoryLimitMB << 20 / 4 }
