package main

// The operator verbs run in-process against real databases: run() with an
// environment pointing at a fresh SQLite file or PostgreSQL schema.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/app/apptest"
)

// cliDB is a database seeded with two users' hooks and events in every
// state, and a way to run verbs on it.
type cliDB struct {
	t      *testing.T
	env    map[string]string
	s      *apptest.Store
	hooks  []apptest.Webhook
	failed []apptest.Event // given up or retrying
	fresh  []apptest.Event // delivered, recent
	old    []apptest.Event // delivered 40 days ago
}

func newCLIDB(t *testing.T, backend string) *cliDB {
	t.Helper()
	url := apptest.URL(t, backend)
	s, err := apptest.Open(context.Background(), url, apptest.Options{Sealer: apptest.Keyring()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := &cliDB{t: t, s: s, env: map[string]string{
		"WHISPERER_CONFIG":       os.DevNull,
		"WHISPERER_DATABASE_URL": url,
		// The verbs read what s wrote: the same key.
		"WHISPERER_SECURITY_ENCRYPTION_KEYS": apptest.Key,
		"WHISPERER_PLUGINS_DIR":              filepath.Join(t.TempDir(), "plugins"),
	}}
	alice, _ := apptest.User(t, s, "alice", apptest.RoleUser)
	bob, _ := apptest.User(t, s, "bob", apptest.RoleUser)
	d.hooks = append(d.hooks,
		apptest.Hook(t, s, alice.ID, "order-created", "https://alice.example/hook", func(w *apptest.Webhook) {
			w.SecretKey = "top-secret-key"
			w.AdditionalHeaders = map[string]string{"X-Api-Key": "header-secret"}
		}),
		apptest.Hook(t, s, bob.ID, "package-created", "https://bob.example/hook"))
	now := time.Now()
	d.old = apptest.Attempted(t, s, "order-created", `{"n":1}`, now.Add(-40*24*time.Hour), apptest.StateDelivered)
	d.failed = append(d.failed, apptest.Attempted(t, s, "order-created", `{"n":2}`, now.Add(-2*time.Hour), apptest.StateGivenUp)...)
	d.failed = append(d.failed, apptest.Attempted(t, s, "package-created", `{"n":3}`, now.Add(-time.Hour), apptest.StatePending)...)
	d.fresh = apptest.Attempted(t, s, "package-created", `{"n":4}`, now.Add(-time.Minute), apptest.StateDelivered)
	return d
}

// run runs a verb and returns stdout, stderr and the exit code main would
// use.
func (d *cliDB) run(args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, environ(d.env), &out, &errb)
	if err != nil {
		code = exitCode(err)
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(&errb, "whisperer:", app.ErrorText(err))
		}
	}
	return out.String(), errb.String(), code
}

// environ is m as os.Environ gives an environment, sorted.
func environ(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// ok runs a verb that must succeed.
func (d *cliDB) ok(args ...string) string {
	d.t.Helper()
	out, errs, code := d.run(args...)
	if code != 0 {
		d.t.Fatalf("whisperer %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// fails runs a verb that must exit with code and mention want on stderr.
func (d *cliDB) fails(code int, want string, args ...string) {
	d.t.Helper()
	out, errs, got := d.run(args...)
	if got != code || !strings.Contains(errs, want) {
		d.t.Errorf("whisperer %s: exit %d, want %d with %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), got, code, want, out, errs)
	}
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

func TestHooksVerbs(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			d := newCLIDB(t, backend)
			a, b := d.hooks[0], d.hooks[1]

			out := d.ok("hooks", "list")
			for _, want := range []string{"ID", "TARGET URL", "alice", "bob", a.TargetURL, b.TargetURL, "fixed"} {
				if !strings.Contains(out, want) {
					t.Errorf("hooks list lacks %q:\n%s", want, out)
				}
			}
			list := decode[[]app.HookInfo](t, d.ok("hooks", "list", "--user", "alice", "--json"))
			if len(list) != 1 || list[0].ID != a.ID || list[0].User != "alice" || !list[0].HasSecret {
				t.Errorf("hooks list --user alice --json = %+v", list)
			}
			if list := decode[[]app.HookInfo](t, d.ok("hooks", "list", "--event-type", "package-created", "--json")); len(list) != 1 || list[0].ID != b.ID {
				t.Errorf("--event-type: %+v", list)
			}

			out = d.ok("hooks", "show", fmt.Sprint(a.ID))
			for _, want := range []string{a.TargetURL, "set (not shown)", "X-Api-Key", "recent events", d.old[0].UUID} {
				if !strings.Contains(out, want) {
					t.Errorf("hooks show lacks %q:\n%s", want, out)
				}
			}
			for _, secret := range []string{"top-secret-key", "header-secret"} {
				if strings.Contains(out, secret) || strings.Contains(d.ok("hooks", "show", fmt.Sprint(a.ID), "--json"), secret) {
					t.Errorf("hooks show prints the secret %q", secret)
				}
			}
			shown := decode[app.HookInfo](t, d.ok("hooks", "show", fmt.Sprint(a.ID), "--json"))
			if shown.ID != a.ID || len(shown.RecentEvents) != 2 {
				t.Errorf("hooks show --json = %+v", shown)
			}

			if out := d.ok("hooks", "disable", fmt.Sprint(a.ID)); !strings.Contains(out, "disabled") {
				t.Errorf("disable: %s", out)
			}
			if list := decode[[]app.HookInfo](t, d.ok("hooks", "list", "--inactive", "--json")); len(list) != 1 || list[0].ID != a.ID {
				t.Errorf("--inactive after disable: %+v", list)
			}
			if out := d.ok("hooks", "disable", fmt.Sprint(a.ID)); !strings.Contains(out, "already disabled") {
				t.Errorf("second disable: %s", out)
			}
			if out := d.ok("hooks", "show", fmt.Sprint(a.ID)); !strings.Contains(out, "no: deactivated by its owner (since ") {
				t.Errorf("hooks show of a disabled hook lacks the reason:\n%s", out)
			}
			if shown := decode[app.HookInfo](t, d.ok("hooks", "show", fmt.Sprint(a.ID), "--json")); shown.DisabledReason != "deactivated by its owner" || shown.DisabledAt == nil {
				t.Errorf("hooks show --json of a disabled hook: %+v", shown)
			}
			d.ok("hooks", "enable", fmt.Sprint(a.ID))
			if h, err := d.s.Webhook(context.Background(), apptest.Scope{All: true}, a.ID); err != nil || !h.IsActive || h.SecretKey != "top-secret-key" || h.DisabledReason != "" {
				t.Errorf("after enable: %+v, %v", h, err)
			}

			d.fails(1, "no hook with id 999", "hooks", "show", "999")
			d.fails(1, "no hook with id 999", "hooks", "enable", "999")
			d.fails(1, `no user named "carol"`, "hooks", "list", "--user", "carol")
			d.fails(2, "positive integer", "hooks", "show", "abc")
			d.fails(2, "expected one hook ID", "hooks", "disable")
		})
	}
}

func TestEventsVerbs(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			d := newCLIDB(t, backend)

			all := decode[[]app.EventInfo](t, d.ok("events", "list", "--json"))
			if len(all) != 4 {
				t.Fatalf("events list: %d events, want 4", len(all))
			}
			failed := decode[[]app.EventInfo](t, d.ok("events", "list", "--failed", "--json"))
			if len(failed) != 2 || !failed[0].Failed || failed[0].UUID != d.failed[1].UUID || failed[1].UUID != d.failed[0].UUID {
				t.Errorf("events list --failed = %+v, want the retrying then the given-up event", failed)
			}
			if got := decode[[]app.EventInfo](t, d.ok("events", "list", "--since", "24h", "--json")); len(got) != 3 {
				t.Errorf("--since 24h: %d events, want 3", len(got))
			}
			since := time.Now().Add(-90 * time.Minute).UTC().Format(time.RFC3339)
			if got := decode[[]app.EventInfo](t, d.ok("events", "list", "--failed", "--since", since, "--json")); len(got) != 1 {
				t.Errorf("--failed --since %s: %d events, want 1", since, len(got))
			}
			if got := decode[[]app.EventInfo](t, d.ok("events", "list", "--webhook", fmt.Sprint(d.hooks[1].ID), "--limit", "1", "--json")); len(got) != 1 || got[0].UUID != d.fresh[0].UUID {
				t.Errorf("--webhook --limit 1: %+v", got)
			}
			out := d.ok("events", "list", "--failed")
			if !strings.Contains(out, "given_up") || !strings.Contains(out, "retrying") || strings.Contains(out, d.fresh[0].UUID) {
				t.Errorf("events list --failed table:\n%s", out)
			}

			out = d.ok("events", "show", d.failed[0].UUID)
			for _, want := range []string{"given_up", "attempts:", "TIME", "DURATION", "12ms", "500", "status 500", "oops", `{"n":2}`} {
				if !strings.Contains(out, want) {
					t.Errorf("events show lacks %q:\n%s", want, out)
				}
			}
			shown := decode[app.EventInfo](t, d.ok("events", "show", d.failed[0].UUID, "--json"))
			if len(shown.AttemptLog) != 1 || shown.AttemptLog[0].Status != 500 || shown.AttemptLog[0].Number != 1 || shown.AttemptLog[0].DurationMS != 12 {
				t.Errorf("events show --json attempt log = %+v", shown.AttemptLog)
			}

			// One event: given up → pending; delivered needs --force.
			d.ok("events", "redeliver", d.failed[0].UUID)
			if j, _ := d.s.Event(context.Background(), apptest.Scope{All: true}, d.failed[0].UUID); j.Event.State != apptest.StatePending {
				t.Errorf("after redeliver: state %s", j.Event.State)
			}
			d.fails(1, "pass --force", "events", "redeliver", d.fresh[0].UUID)
			d.ok("events", "redeliver", d.fresh[0].UUID, "--force")

			d.fails(1, "no event with uuid 0123456789abcdef0123456789abcdef", "events", "show", "0123456789abcdef0123456789abcdef")
			d.fails(1, "no event with uuid", "events", "redeliver", "0123456789abcdef0123456789abcdef")
			d.fails(2, "--since", "events", "list", "--since", "yesterday")
			d.fails(2, "--since", "events", "redeliver", "--since", "last week")
			d.fails(2, "--limit", "events", "list", "--limit", "0")
			d.fails(2, "either one event UUID or --since", "events", "redeliver")
			d.fails(2, "either one event UUID or --since", "events", "redeliver", d.fresh[0].UUID, "--since", "1h")
			d.fails(2, "expected one event UUID", "events", "show")
		})
	}
}

// Bulk redelivery goes in batches and reports progress on stderr.
func TestEventsRedeliverSince(t *testing.T) {
	d := newCLIDB(t, apptest.SQLite)
	for range 3 {
		apptest.Attempted(t, d.s, "package-created", `{}`, time.Now().Add(-time.Minute), apptest.StateGivenUp)
	}
	out, errs, code := d.run("events", "redeliver", "--since", "24h", "--webhook", fmt.Sprint(d.hooks[1].ID))
	if code != 0 || !strings.Contains(out, "4 event(s) scheduled") || !strings.Contains(errs, "redelivered 4/4") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	c, _ := d.s.Counts(context.Background())
	if c[apptest.StateGivenUp] != 1 { // alice's, on the other hook
		t.Errorf("counts after redeliver: %v", c)
	}
}

func TestCountdownPreview(t *testing.T) {
	d := &cliDB{t: t, env: map[string]string{
		"WHISPERER_CONFIG":       os.DevNull,
		"WHISPERER_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "unused.db"),
		"WHISPERER_PLUGINS_DIR":  t.TempDir(),
	}}
	out := d.ok("countdown", "preview", "--choice", "exponential", "--kwargs", `{"base":2}`, "--retries", "5")
	for _, want := range []string{"ATTEMPT", "WAIT", "AT", "exponential", "given up after attempt 5 fails, 15s after the first"} {
		if !strings.Contains(out, want) {
			t.Errorf("preview lacks %q:\n%s", want, out)
		}
	}
	type preview struct {
		Schedule []scheduleRow `json:"schedule"`
	}
	p := decode[preview](t, d.ok("countdown", "preview", "--choice", "exponential", "--kwargs", `{"base":2}`, "--json"))
	if len(p.Schedule) != 18 || p.Schedule[1].WaitSeconds != 1 || p.Schedule[4].WaitSeconds != 8 || p.Schedule[4].AtSeconds != 15 {
		t.Errorf("default 18 attempts of exponential base 2: %+v", p.Schedule)
	}

	// A plugin countdown: the documented "custom" one, factor 5, waits
	// 0, 5, 20, 15 seconds.
	wasm, err := os.ReadFile("../../examples/custom-countdown/wat/custom.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.env["WHISPERER_PLUGINS_DIR"], "custom.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	p = decode[preview](t, d.ok("countdown", "preview", "--choice", "custom", "--kwargs", `{"factor":5}`, "--retries", "5", "--json"))
	var waits []float64
	for _, r := range p.Schedule {
		waits = append(waits, r.WaitSeconds)
	}
	if fmt.Sprint(waits) != "[0 0 5 20 15]" {
		t.Errorf("custom factor 5 waits %v, want [0 0 5 20 15]", waits)
	}

	d.fails(1, "factor", "countdown", "preview", "--choice", "custom", "--kwargs", `{}`)
	// The crash report's kwargs are refused, not a panic; the largest
	// accepted ones preview a bounded schedule.
	d.fails(1, "\n  kwargs.max_value: Ensure this value is less than or equal to 2592000.\n", "countdown", "preview",
		"--choice", "random", "--kwargs", `{"min_value": 0, "max_value": 9223372036854775807}`)
	p = decode[preview](t, d.ok("countdown", "preview", "--choice", "random", "--kwargs",
		`{"min_value": 2591999, "max_value": 2592000}`, "--retries", "1000", "--json"))
	if last := p.Schedule[len(p.Schedule)-1]; len(p.Schedule) != 1000 || last.WaitSeconds < 2591999 || last.AtSeconds < 999*2591999 {
		t.Errorf("1000 attempts at the largest random kwargs: %d rows, last %+v", len(p.Schedule), last)
	}
	// delivery.max_retries far beyond the flag's bound: the total
	// saturates instead of wrapping around to a negative time.
	d.env["WHISPERER_DELIVERY_MAX_RETRIES"] = "5000"
	total := decode[struct {
		Total float64 `json:"given_up_after_seconds"`
	}](t, d.ok("countdown", "preview", "--choice", "fixed", "--kwargs", `{"seconds": 2592000}`, "--json"))
	delete(d.env, "WHISPERER_DELIVERY_MAX_RETRIES")
	if total.Total < 1e9 {
		t.Errorf("5000 attempts 30 days apart given up after %v s", total.Total)
	}
	d.fails(1, "not a valid choice", "countdown", "preview", "--choice", "nope")
	d.fails(2, "--kwargs must be a JSON object", "countdown", "preview", "--choice", "fixed", "--kwargs", "seconds=1")
	d.fails(2, "--choice is required", "countdown", "preview")
}

func TestRetentionPurgeVerb(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			d := newCLIDB(t, backend)
			out := d.ok("retention", "purge", "--dry-run")
			if !strings.Contains(out, "would delete 1 delivered event(s), 1 attempt(s) and 1 message(s) older than 30 days") {
				t.Errorf("dry run: %s", out)
			}
			if c, _ := d.s.Counts(context.Background()); c[apptest.StateDelivered] != 2 {
				t.Fatalf("dry run deleted: %v", c)
			}
			out, errs, code := d.run("retention", "purge")
			if code != 0 || !strings.Contains(out, "deleted 1 delivered event(s), 1 attempt(s) and 1 message(s)") || !strings.Contains(errs, "purged 1 event(s)") {
				t.Fatalf("purge: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
			}
			if _, err := d.s.Event(context.Background(), apptest.Scope{All: true}, d.old[0].UUID); !errors.Is(err, apptest.ErrNotFound) {
				t.Errorf("old event survived: %v", err)
			}
			if got := decode[[]app.EventInfo](t, d.ok("events", "list", "--json")); len(got) != 3 {
				t.Errorf("%d events left, want 3", len(got))
			}
			d.fails(2, "--days must be at least 1", "retention", "purge", "--days", "0")
			d.env["WHISPERER_RETENTION_DAYS"] = "0"
			d.fails(1, "retention is disabled", "retention", "purge")
			if out := d.ok("retention", "purge", "--days", "1", "--dry-run"); !strings.Contains(out, "would delete 0 delivered") {
				t.Errorf("--days 1 dry run: %s", out)
			}
		})
	}
}

// A target_url with credentials, as an older release stored it, is shown
// by hooks list/show and events show without them.
func TestHooksVerbsRedactURLCredentials(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			d := newCLIDB(t, backend)
			a := d.hooks[0]
			if _, err := d.s.DB().NewUpdate().Table("webhooks").Set("target_url = ?", "https://carol:url-pw-secret@alice.example/hook").
				Where("id = ?", a.ID).Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"hooks", "list"}, {"hooks", "list", "--json"}, {"hooks", "show", fmt.Sprint(a.ID)},
				{"hooks", "show", fmt.Sprint(a.ID), "--json"}, {"hooks", "disable", fmt.Sprint(a.ID)},
				{"events", "show", d.failed[0].UUID}} {
				out := d.ok(args...)
				if strings.Contains(out, "carol") || strings.Contains(out, "url-pw-secret") || !strings.Contains(out, "***@alice.example") {
					t.Errorf("%v shows:\n%s", args, out)
				}
			}
		})
	}
}

// event-types add says which names it added and which were registered
// already (the configured ones count), instead of "added" for all.
func TestEventTypesAddSaysWhatIsNew(t *testing.T) {
	d := newCLIDB(t, apptest.SQLite)
	out, errOut, code := d.run("event-types", "add", "order-created", "foo.bar", "foo.bar")
	if code != 0 || out != "added foo.bar\nalready registered: order-created, foo.bar\n" {
		t.Fatalf("first add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, _, code := d.run("event-types", "add", "foo.bar"); code != 0 || out != "already registered: foo.bar\n" {
		t.Errorf("second add: exit %d, stdout %q", code, out)
	}
}
