package main

// The edges a newcomer hit (issue 15): errors worded for people, a listing
// verb for users and tokens, --json wherever the README says, a warning
// for a misspelled variable, and each flag value that used to be quietly
// misread.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/app/apptest"
)

// noJargon fails when a message shows a package prefix or Go's map syntax.
func noJargon(t *testing.T, what, msg string) {
	t.Helper()
	for _, bad := range []string{"webhook:", "api:", "store:", "map[", "storage unavailable"} {
		if strings.Contains(msg, bad) {
			t.Errorf("%s: %q in %q", what, bad, msg)
		}
	}
}

func TestCLIErrorsReadAsSentences(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			d := newCLIDB(t, backend)
			for _, c := range []struct {
				code int
				want string
				args []string
			}{
				{1, `a user named "alice" already exists`, []string{"users", "create", "alice"}},
				{1, `no user named "nobody"`, []string{"tokens", "create", "nobody"}},
				{1, `no user named "nobody"`, []string{"tokens", "list", "--user", "nobody"}},
				{1, `no user named "nobody"`, []string{"hooks", "list", "--user", "nobody"}},
				{1, "\n  kwargs.seconds: This field is required.", []string{"countdown", "preview", "--choice", "fixed", "--kwargs", "{}"}},
			} {
				_, errs, code := d.run(c.args...)
				if code != c.code || !strings.Contains(errs, c.want) {
					t.Errorf("whisperer %s: exit %d, want %d with %q:\n%s", strings.Join(c.args, " "), code, c.code, c.want, errs)
				}
				noJargon(t, strings.Join(c.args, " "), errs)
			}
		})
	}
}

// A database that cannot be opened is named, without its password.
func TestCLIUnavailableDatabaseNamed(t *testing.T) {
	d := &cliDB{t: t, env: map[string]string{"WHISPERER_CONFIG": os.DevNull, "WHISPERER_PLUGINS_DIR": t.TempDir()}}
	dir := t.TempDir() // a directory is no SQLite file: "unable to open database file (14)"
	d.env["WHISPERER_DATABASE_URL"] = "sqlite://" + dir
	_, errs, code := d.run("hooks", "list")
	if code != 1 || !strings.Contains(errs, "cannot open the database sqlite://"+dir+" (from WHISPERER_DATABASE_URL=") {
		t.Errorf("hooks list on a directory: exit %d:\n%s", code, errs)
	}
	noJargon(t, "hooks list on a directory", errs)

	d.env["WHISPERER_DATABASE_URL"] = "postgres://whisperer:hunter2@127.0.0.1:1/nodb?sslmode=disable"
	d.env["WHISPERER_SECURITY_ENCRYPTION_KEYS"] = apptest.Key
	for _, verb := range [][]string{{"migrate"}, {"hooks", "list"}, {"users", "create", "x"}} {
		_, errs, code := d.run(verb...)
		if code != 1 || !strings.Contains(errs, "cannot open the database postgres://whisperer:xxxxx@127.0.0.1:1/nodb") || strings.Contains(errs, "hunter2") {
			t.Errorf("%s on an unreachable PostgreSQL: exit %d:\n%s", verb, code, errs)
		}
		noJargon(t, strings.Join(verb, " "), errs)
	}

	// An invalid default countdown names its setting, in serve too.
	d.env["WHISPERER_DATABASE_URL"] = "sqlite://" + filepath.Join(t.TempDir(), "w.db")
	d.env["WHISPERER_SERVER_ADDR"] = "127.0.0.1:0"
	d.env["WHISPERER_DELIVERY_DEFAULT_RETRY_COUNTDOWN_CHOICE"] = "fixed"
	d.env["WHISPERER_DELIVERY_DEFAULT_RETRY_COUNTDOWN_KWARGS"] = "{}"
	_, errs, code = d.run("serve")
	if code != 1 || !strings.Contains(errs, "delivery.default_retry_countdown is invalid: kwargs.seconds: This field is required.") {
		t.Errorf("serve with an invalid default countdown: exit %d:\n%s", code, errs)
	}
	noJargon(t, "serve", errs)
}

func TestUsersAndTokensList(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			d := newCLIDB(t, backend)
			out := d.ok("users", "create", "carol", "--publisher")
			if !strings.HasPrefix(out, `created user "carol" (role publisher, id `) {
				t.Errorf("users create: %q", out)
			}
			carolKey := lastLine(out)
			second := lastLine(d.ok("tokens", "create", "carol"))
			d.ok("tokens", "revoke", second[:8])

			type user struct {
				Username   string `json:"username"`
				Role       string `json:"role"`
				CreatedAt  string `json:"created_at"`
				LiveTokens int    `json:"live_tokens"`
			}
			users := decode[[]user](t, d.ok("users", "list", "--json"))
			var names []string
			for _, u := range users {
				names = append(names, u.Username)
				if u.Username == "carol" && (u.Role != "publisher" || u.LiveTokens != 1 || u.CreatedAt == "") {
					t.Errorf("carol: %+v", u)
				}
			}
			if !slices.Equal(names, []string{"alice", "bob", "carol"}) {
				t.Errorf("users: %v", names)
			}
			table := d.ok("users", "list")
			for _, want := range []string{"NAME", "ROLE", "LIVE TOKENS", "carol", "publisher"} {
				if !strings.Contains(table, want) {
					t.Errorf("users list lacks %q:\n%s", want, table)
				}
			}

			type token struct {
				Prefix    string  `json:"prefix"`
				User      string  `json:"user"`
				CreatedAt string  `json:"created_at"`
				Revoked   bool    `json:"revoked"`
				RevokedAt *string `json:"revoked_at"`
			}
			raw := d.ok("tokens", "list", "--user", "carol", "--json")
			toks := decode[[]token](t, raw)
			if len(toks) != 2 || toks[0].Prefix != carolKey[:8] || toks[0].Revoked || toks[0].RevokedAt != nil ||
				toks[1].Prefix != second[:8] || !toks[1].Revoked || toks[1].RevokedAt == nil || toks[0].User != "carol" {
				t.Errorf("carol's tokens: %+v", toks)
			}
			all := d.ok("tokens", "list")
			for _, secret := range []string{carolKey, second, carolKey[8:], second[8:]} {
				if strings.Contains(raw, secret) || strings.Contains(all, secret) {
					t.Errorf("tokens list shows more than the prefix of a key")
				}
			}
			if !strings.Contains(all, "alice") || !strings.Contains(all, "PREFIX") {
				t.Errorf("tokens list:\n%s", all)
			}
		})
	}
}

// Every verb the README documents as taking --json does, and prints JSON.
func TestREADMEJSONVerbs(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The sentence under the command table lists them.
	m := regexp.MustCompile(`(?s)print a table, or\s+JSON with ` + "`--json`" + `: (.*?)\.`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README: no sentence listing the verbs that take --json")
	}
	var verbs [][]string
	for _, v := range regexp.MustCompile("`([a-z -]+)`").FindAllSubmatch(m[1], -1) {
		verbs = append(verbs, strings.Fields(string(v[1])))
	}
	// Every listing verb of the table is among them.
	for _, v := range regexp.MustCompile("`(?:whisperer )?([a-z-]+ list)\\b").FindAllSubmatch(readme, -1) {
		if !slices.ContainsFunc(verbs, func(w []string) bool { return strings.Join(w, " ") == string(v[1]) }) {
			t.Errorf("README: %q lists but is not said to take --json", v[1])
		}
	}
	if len(verbs) < 8 {
		t.Fatalf("README names only %v", verbs)
	}

	d := newCLIDB(t, "sqlite")
	wasm, err := os.ReadFile("../../examples/custom-countdown/wat/custom.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d.env["WHISPERER_PLUGINS_DIR"], 0o755); err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(d.env["WHISPERER_PLUGINS_DIR"], "custom.wasm")
	if err := os.WriteFile(plugin, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	args := map[string][]string{
		"hooks show":        {"1"},
		"events show":       {d.failed[0].UUID},
		"plugins check":     {plugin},
		"countdown preview": {"--choice", "fixed", "--kwargs", `{"seconds":1}`},
	}
	for _, v := range verbs {
		out := d.ok(append(append(v, args[strings.Join(v, " ")]...), "--json")...)
		if !json.Valid([]byte(out)) {
			t.Errorf("%s --json is not JSON:\n%s", strings.Join(v, " "), out)
		}
	}
}

func TestMigrateSaysWhatItApplied(t *testing.T) {
	d := &cliDB{t: t, env: map[string]string{
		"WHISPERER_CONFIG":       os.DevNull,
		"WHISPERER_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "w.db"),
	}}
	out := d.ok("migrate")
	if !strings.HasPrefix(out, "applied ") || !strings.Contains(out, "(the database was empty): 001_init.sql, 002_retention.sql") {
		t.Errorf("migrate on a fresh database: %q", out)
	}
	if out := d.ok("migrate"); !strings.Contains(out, "up to date") || strings.Contains(out, "applied") {
		t.Errorf("migrate again: %q", out)
	}
}

func TestPluginsVerbsSayValid(t *testing.T) {
	dir := t.TempDir()
	d := &cliDB{t: t, env: map[string]string{
		"WHISPERER_CONFIG":       os.DevNull,
		"WHISPERER_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "unused.db"),
		"WHISPERER_PLUGINS_DIR":  dir,
	}}
	wasm, err := os.ReadFile("../../examples/custom-countdown/wat/custom.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "custom.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	type report struct {
		File       string   `json:"file"`
		Countdowns []string `json:"countdowns"`
		Valid      bool     `json:"valid"`
		Error      string   `json:"error"`
	}
	out := d.ok("plugins", "check", filepath.Join(dir, "custom.wasm"))
	if r := decode[report](t, out); !r.Valid || r.Error != "" || !slices.Equal(r.Countdowns, []string{"custom"}) || strings.Contains(out, `"loaded"`) {
		t.Errorf("plugins check of a good plugin:\n%s", out)
	}
	if rs := decode[[]report](t, d.ok("plugins", "list", "--json")); len(rs) != 1 || !rs[0].Valid {
		t.Errorf("plugins list --json: %+v", rs)
	}

	if err := os.WriteFile(filepath.Join(dir, "broken.wasm"), []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := d.run("plugins", "list")
	if code != 1 || !strings.Contains(errs, "1 of 2 plugin(s) in "+dir+" failed to load: broken.wasm") ||
		!strings.Contains(out, "custom.wasm") || !strings.Contains(out, "valid") {
		t.Errorf("plugins list with a broken plugin: exit %d\n%s%s", code, out, errs)
	}
	out, _, code = d.run("plugins", "list", "--json")
	if rs := decode[[]report](t, out); code != 1 || len(rs) != 2 || rs[0].File != "broken.wasm" || rs[0].Valid || rs[0].Error == "" || !rs[1].Valid {
		t.Errorf("plugins list --json with a broken plugin: exit %d %+v", code, rs)
	}
	d.fails(1, "broken.wasm is not a valid plugin", "plugins", "check", filepath.Join(dir, "broken.wasm"))
}

func TestFlagValuesNotMisread(t *testing.T) {
	d := newCLIDB(t, "sqlite")
	d.fails(2, "--retries is the number of attempts in a series", "countdown", "preview", "--choice", "fixed", "--kwargs", `{"seconds":1}`, "--retries", "0")
	type preview struct {
		Schedule []scheduleRow `json:"schedule"`
	}
	if p := decode[preview](t, d.ok("countdown", "preview", "--choice", "fixed", "--kwargs", `{"seconds":1}`, "--retries", "1", "--json")); len(p.Schedule) != 1 {
		t.Errorf("--retries 1: %+v", p.Schedule)
	}
	d.fails(2, "--until (", "events", "redeliver", "--since", "1h", "--until", "2h")
	d.fails(2, "must be after --since", "events", "redeliver", "--since", "2025-01-02", "--until", "2025-01-02")
	if out := d.ok("events", "redeliver", "--since", "3h", "--until", "90m"); !strings.Contains(out, "1 event(s) scheduled") {
		t.Errorf("a range that holds one failed event: %q", out)
	}
}

// A WHISPERER_* variable that is no setting is warned about, once, with
// the closest name; the variables the tests and clients read are not.
func TestUnknownEnvironmentVariableWarned(t *testing.T) {
	d := newCLIDB(t, "sqlite")
	d.env["WHISPERER_DATABSE_URL"] = "sqlite:///elsewhere.db"
	d.env["WHISPERER_TEST_POSTGRES"] = "0"
	d.env["WHISPERER_TOKEN"] = "abc"
	_, errs, code := d.run("hooks", "list")
	want := "whisperer: warning: the environment variable WHISPERER_DATABSE_URL is not a Whisperer setting and is ignored; did you mean WHISPERER_DATABASE_URL?\n"
	if code != 0 || strings.Count(errs, want) != 1 || strings.Count(errs, "warning") != 1 {
		t.Errorf("exit %d, stderr:\n%s", code, errs)
	}
	if strings.Contains(errs, "elsewhere") {
		t.Errorf("the warning quotes the value: %s", errs)
	}
}

// Each README Go block that starts with "// FILE" is quoted from FILE, so
// the README shows the code the examples build.
func TestREADMEQuotesExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n// (examples/[^\n]+\\.go)\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) < 2 {
		t.Fatalf("README quotes %d example files, want the countdown's and the callback's", len(blocks))
	}
	quoted := map[string]bool{}
	for _, b := range blocks {
		file := string(b[1])
		src, err := os.ReadFile(filepath.Join("../..", file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), string(b[2])) {
			t.Errorf("README's block from %s is not in that file:\n%s", file, b[2])
		}
		quoted[file] = true
	}
	if !quoted["examples/callback/main.go"] || !quoted["examples/custom-countdown/main.go"] {
		t.Errorf("quoted: %v", quoted)
	}
}
