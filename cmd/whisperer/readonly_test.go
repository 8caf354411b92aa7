package main

// The verbs that only read open an existing database as they find it:
// they never create one (nor its key file) and never migrate one.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/app/apptest"
)

// readOnlyVerbs are every verb that only reads the database.
var readOnlyVerbs = [][]string{
	{"event-types", "list"},
	{"hooks", "list"},
	{"hooks", "show", "1"},
	{"events", "list"},
	{"events", "show", "00000000-0000-0000-0000-000000000001"},
	{"retention", "purge", "--dry-run", "--days", "1"},
}

// runEnv runs a verb in-process with only env set and returns its
// stdout, stderr (with main's error line) and exit code.
func runEnv(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := 0
	if err := run(context.Background(), args, environ(env), &out, &errb); err != nil {
		code = exitCode(err)
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(&errb, "whisperer:", err)
		}
	}
	return out.String(), errb.String(), code
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// writeConfig writes a config file setting database.url into dir.
func writeConfig(t *testing.T, dir, url string) string {
	t.Helper()
	path := filepath.Join(dir, "config.koanf.yaml")
	if err := os.WriteFile(path, []byte("database:\n  url: \""+url+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadOnlyVerbsMissingDatabase(t *testing.T) {
	cfgDir, cwd := t.TempDir(), t.TempDir()
	t.Chdir(cwd)
	cfg := writeConfig(t, cfgDir, "sqlite://whisperer.db")
	env := map[string]string{"WHISPERER_CONFIG": cfg}
	want := fmt.Sprintf("whisperer: no database at %s (from database.url sqlite://whisperer.db in %s): run whisperer migrate first\n",
		filepath.Join(cfgDir, "whisperer.db"), cfg)
	for _, args := range readOnlyVerbs {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := runEnv(t, env, args...)
			if code != 1 || errOut != want || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and stderr %q", code, out, errOut, want)
			}
			if got := dirNames(t, cfgDir); !slices.Equal(got, []string{"config.koanf.yaml"}) {
				t.Errorf("left %v beside the config file", got)
			}
			if got := dirNames(t, cwd); len(got) != 0 {
				t.Errorf("left %v in the working directory", got)
			}
		})
	}

	// From the environment the path is the working directory's, and the
	// message says where it came from.
	env = map[string]string{"WHISPERER_CONFIG": os.DevNull, "WHISPERER_DATABASE_URL": "sqlite://env.db"}
	want = fmt.Sprintf("whisperer: no database at %s (from WHISPERER_DATABASE_URL=sqlite://env.db): run whisperer migrate first\n",
		filepath.Join(cwd, "env.db"))
	if _, errOut, code := runEnv(t, env, "hooks", "list"); code != 1 || errOut != want {
		t.Errorf("from the environment: exit %d, stderr %q; want 1, %q", code, errOut, want)
	}
	if got := dirNames(t, cwd); len(got) != 0 {
		t.Errorf("left %v in the working directory", got)
	}
}

// schemaVersions is what schema_migrations holds.
func schemaVersions(t *testing.T, url string) []int {
	t.Helper()
	s, err := apptest.Open(context.Background(), url, apptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var vs []int
	if err := s.DB().NewSelect().Table("schema_migrations").Column("version").Order("version").Scan(context.Background(), &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestReadOnlyVerbsOldSchema(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			url := apptest.Legacy(t, backend) // migrations 001-003
			before := schemaVersions(t, url)
			env := map[string]string{"WHISPERER_CONFIG": os.DevNull, "WHISPERER_DATABASE_URL": url}
			if backend == apptest.Postgres {
				env["WHISPERER_SECURITY_ENCRYPTION_KEYS"] = apptest.Key
			}
			for _, args := range readOnlyVerbs {
				_, errOut, code := runEnv(t, env, args...)
				// Later migrations follow in the list: only the first ones are fixed.
				if code != 1 || !strings.Contains(errOut, "has an older schema, without migration(s) 004_secrets.sql, 005_console_sessions.sql, ") ||
					!strings.Contains(errOut, ": run whisperer migrate first") {
					t.Errorf("%v: exit %d, stderr %q; want exit 1 and the older schema named", args, code, errOut)
				}
				if got := schemaVersions(t, url); !slices.Equal(got, before) {
					t.Fatalf("%v migrated the database: schema versions %v, were %v", args, got, before)
				}
			}
			if backend == apptest.SQLite {
				dir := filepath.Dir(strings.TrimPrefix(url, "sqlite://"))
				if slices.Contains(dirNames(t, dir), "whisperer.db.key") {
					t.Error("a read-only verb created the key file")
				}
			}
			// The verbs that write still migrate, and then the readers read.
			if _, errOut, code := runEnv(t, env, "migrate"); code != 0 {
				t.Fatalf("migrate: exit %d: %s", code, errOut)
			}
			if out, errOut, code := runEnv(t, env, "hooks", "list"); code != 0 || !strings.Contains(out, "https://a.example/") {
				t.Errorf("hooks list after migrate: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		})
	}
}

// An empty file, as an older release's read-only verb could leave, is a
// database without a schema: not migrated either.
func TestReadOnlyVerbsEmptyDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WHISPERER_CONFIG": os.DevNull, "WHISPERER_DATABASE_URL": "sqlite://" + path}
	_, errOut, code := runEnv(t, env, "events", "list")
	if code != 1 || !strings.Contains(errOut, "has no schema: run whisperer migrate first") {
		t.Errorf("exit %d, stderr %q; want exit 1 and no schema", code, errOut)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Errorf("the empty database was written to: %v, %v", st, err)
	}
}

// A relative sqlite:// path in a config file is the config file's
// directory's, wherever whisperer runs.
func TestRelativeSQLitePathFollowsConfigFile(t *testing.T) {
	cfgDir, cwd := t.TempDir(), t.TempDir()
	t.Chdir(cwd)
	cfg := writeConfig(t, cfgDir, "sqlite://data/whisperer.db")
	if err := os.Mkdir(filepath.Join(cfgDir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WHISPERER_CONFIG": cfg, "WHISPERER_PLUGINS_DIR": filepath.Join(cfgDir, "plugins")}
	if _, errOut, code := runEnv(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(cfgDir, "data", "whisperer.db")); err != nil {
		t.Errorf("migrate did not create the database beside the config file: %v", err)
	}
	if got := dirNames(t, cwd); len(got) != 0 {
		t.Errorf("migrate created %v in the working directory", got)
	}
	if _, errOut, code := runEnv(t, env, "users", "create", "alice"); code != 0 {
		t.Fatalf("users create: exit %d: %s", code, errOut)
	}
	if out, errOut, code := runEnv(t, env, "event-types", "list"); code != 0 ||
		out != "order-created\npackage-created\nwhisperer.event.given_up\nwhisperer.hook.disabled\nwhisperer.plugin.failed\n" {
		t.Errorf("event-types list: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
