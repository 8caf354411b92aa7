package plugin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	ctx := context.Background()
	cfg := Config{CacheDir: compileCache}
	info, err := Check(ctx, cfg, filepath.Join("..", "..", "..", "examples", "custom-countdown", "c", "custom.wasm"), nil)
	if err != nil || info.Name != "custom-countdown-c" || len(info.Countdowns) != 1 || info.Countdowns[0] != "custom" {
		t.Fatalf("Check(c example) = %+v, %v", info, err)
	}
	info, err = Check(ctx, cfg, filepath.Join("testdata", "badsig.wasm"), nil)
	if err == nil || !strings.Contains(info.Error, "export whisperer_countdown has signature") {
		t.Fatalf("Check(badsig) = %+v, %v", info, err)
	}
	if _, err := Check(ctx, cfg, filepath.Join("testdata", "missing.wasm"), nil); err == nil {
		t.Fatal("Check(missing file) succeeded")
	}
}

// TestABIExample loads the WAT plugin printed in sdk/ABI.md §10, so the
// spec's example cannot rot.
func TestABIExample(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Skip("wat2wasm not installed (Debian: apt-get install wabt)")
	}
	spec, err := os.ReadFile(filepath.Join("..", "..", "..", "sdk", "ABI.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```wat\n(.*?)```").FindSubmatch(spec)
	if m == nil {
		t.Fatal("no wat example in ABI.md")
	}
	dir := t.TempDir()
	wat := filepath.Join(dir, "ten.wat")
	if err := os.WriteFile(wat, m[1], 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("wat2wasm", wat, "-o", filepath.Join(dir, "ten.wasm")).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	os.Remove(wat)
	sink := newSink()
	startHost(t, testConfig(dir), sink)
	if v, err := sink.countdown(t, "ten").Value(context.Background(), 3, []byte(`{}`)); v != 10 || err != nil {
		t.Fatalf("ten = %d, %v", v, err)
	}
}

func TestConfig(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.Dir != "plugins" || c.CacheDir != DefaultCacheDir() || c.CallTimeout != 100*time.Millisecond ||
		c.CallbackTimeout != 5*time.Second || c.MemoryLimitMB != 64 || c.PoolSize != 4 || c.PollInterval != 2*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{CallTimeout: -1, MemoryLimitMB: 4096, PoolSize: -2}.WithDefaults()
	err := bad.Validate()
	for _, want := range []string{"plugins.call_timeout", "plugins.memory_limit_mb", "plugins.pool_size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if _, err := New(bad, newSink(), nil); err == nil {
		t.Error("New accepted a bad config")
	}
}
