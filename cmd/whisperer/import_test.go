package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/whisperer/whisperer/core/app/apptest"
)

// The verb's wiring and output; core/app's tests cover the import itself.
func TestImportDJWhispererVerb(t *testing.T) {
	from := apptest.URL(t, apptest.Postgres)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, f := range []string{"djwhisperer-0.2.sql", "seed.sql"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "core", "internal", "djimport", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(b)); err != nil {
			t.Fatal(err)
		}
	}
	d := newCLIDB(t, apptest.SQLite) // has users alice and bob already

	if _, stderr, code := d.run("import", "dj-whisperer"); code != 2 || !strings.Contains(stderr, "--from is required") {
		t.Fatalf("no --from: code %d, stderr %q", code, stderr)
	}
	if _, stderr, code := d.run("import", "dj-whisperer", "--from", from, "--requeue"); code != 1 || !strings.Contains(stderr, "--requeue needs --events") {
		t.Fatalf("--requeue alone: code %d, stderr %q", code, stderr)
	}
	out, stderr, code := d.run("import", "dj-whisperer", "--from", from, "--events", "--dry-run", "--json")
	if code != 0 {
		t.Fatalf("dry run: code %d, stderr %q", code, stderr)
	}
	var rep struct {
		DryRun bool `json:"dry_run"`
		Users  struct {
			Imported, Existing int
		} `json:"users"`
		Hooks    struct{ Imported int } `json:"hooks"`
		Problems []struct {
			Table, ID, Action, Reason string
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v in %s", err, out)
	}
	if !rep.DryRun || rep.Users.Imported != 2 || rep.Users.Existing != 2 || rep.Hooks.Imported != 7 || len(rep.Problems) == 0 {
		t.Fatalf("dry run report: %s", out)
	}
	out, stderr, code = d.run("import", "dj-whisperer", "--from", from, "--events")
	if code != 0 || !strings.Contains(out, "users   imported 2, already there 2, skipped 0") ||
		!strings.Contains(out, "events  imported 5, already there 0, skipped 0") ||
		!strings.Contains(out, `whisperer_webhook 3: imported inactive: callback "myapp.hooks.on_delivery"`) ||
		!strings.Contains(stderr, "import: events 5/5") {
		t.Fatalf("import: code %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}
