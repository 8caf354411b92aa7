package config

import (
	"strings"
	"testing"
	"time"
)

// console.enabled is read inverted into Console.Disabled, so the zero
// Config has the console on; its TTL and the base path are checked.
func TestConsoleKeys(t *testing.T) {
	if c := mustLoad(t, LoadOptions{Getenv: env(nil)}); c.Console.Disabled || c.Console.SessionTTL != 12*time.Hour {
		t.Fatalf("default console = %+v, want enabled with 12h", c.Console)
	}
	c := mustLoad(t, LoadOptions{Getenv: env(map[string]string{
		"WHISPERER_CONSOLE_ENABLED": "false", "WHISPERER_CONSOLE_SESSION_TTL": "30m"})})
	if !c.Console.Disabled || c.Console.SessionTTL != 30*time.Minute {
		t.Fatalf("console from the environment = %+v", c.Console)
	}
	for _, tc := range []struct {
		over map[string]any
		want string
	}{
		{map[string]any{"console.enabled": "maybe"}, `console.enabled: expected true or false, got "maybe"`},
		{map[string]any{"console.session_ttl": "10s"}, "console.session_ttl: must be between 1m and 720h, got 10s"},
		{map[string]any{"server.base_path": "/"}, "console.enabled: the console is served at"},
	} {
		_, err := load(LoadOptions{Getenv: env(nil), Overrides: tc.over})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v) = %v, want %q", tc.over, err, tc.want)
		}
	}
	// With the console off, the API may have "/".
	if _, err := load(LoadOptions{Getenv: env(nil), Overrides: map[string]any{"server.base_path": "/", "console.enabled": false}}); err != nil {
		t.Fatalf("base path / with the console off: %v", err)
	}
}
