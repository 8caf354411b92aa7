package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// A relative sqlite:// path in a config file is the file's directory's;
// anything else is left as written.
func TestSQLitePathRelativeToConfigFile(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"sqlite://whisperer.db", "sqlite://{dir}/whisperer.db"},
		{"sqlite://data/w.db?_pragma=cache_size(-2000)", "sqlite://{dir}/data/w.db?_pragma=cache_size(-2000)"},
		{"sqlite://../up.db", "sqlite://{parent}/up.db"},
		{"SQLITE://w.db", "sqlite://{dir}/w.db"},
		{"sqlite:///var/lib/w.db", "sqlite:///var/lib/w.db"},
		{"sqlite://:memory:", "sqlite://:memory:"},
		{"sqlite://:memory:?cache=shared", "sqlite://:memory:?cache=shared"},
		{"postgres://u@db.example/w", "postgres://u@db.example/w"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			path := writeFile(t, "database:\n  url: \""+tc.url+"\"\n")
			dir := filepath.Dir(path)
			want := strings.NewReplacer("{dir}", dir, "{parent}", filepath.Dir(dir)).Replace(tc.want)
			c := mustLoad(t, LoadOptions{File: path})
			if c.Database.URL != want {
				t.Errorf("database.url = %q, want %q", c.Database.URL, want)
			}
			if from := "database.url " + tc.url + " in " + path; c.DatabaseURLFrom != from {
				t.Errorf("DatabaseURLFrom = %q, want %q", c.DatabaseURLFrom, from)
			}
		})
	}
}

// From the environment or a flag a relative path stays the working
// directory's, even over a config file's; the origin never shows a
// password.
func TestSQLitePathFromEnvAndFlags(t *testing.T) {
	path := writeFile(t, "database:\n  url: \"sqlite://file.db\"\n")
	c := mustLoad(t, LoadOptions{File: path, Getenv: env(map[string]string{"WHISPERER_DATABASE_URL": "sqlite://env.db"})})
	if c.Database.URL != "sqlite://env.db" || c.DatabaseURLFrom != "WHISPERER_DATABASE_URL=sqlite://env.db" {
		t.Errorf("env: url %q from %q", c.Database.URL, c.DatabaseURLFrom)
	}

	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("database-url", "", "")
	if err := fs.Parse([]string{"--database-url", "sqlite://flag.db"}); err != nil {
		t.Fatal(err)
	}
	c = mustLoad(t, LoadOptions{File: path, Flags: fs, FlagKeys: map[string]string{"database-url": "database.url"}})
	if c.Database.URL != "sqlite://flag.db" || c.DatabaseURLFrom != "--database-url sqlite://flag.db" {
		t.Errorf("flag: url %q from %q", c.Database.URL, c.DatabaseURLFrom)
	}

	c = mustLoad(t, LoadOptions{Getenv: env(map[string]string{
		"WHISPERER_CONFIG": "/dev/null", "WHISPERER_DATABASE_URL": "postgres://u:hunter2@db.example/w",
		"WHISPERER_SECURITY_ENCRYPTION_KEYS": "",
	})})
	if strings.Contains(c.DatabaseURLFrom, "hunter2") || !strings.Contains(c.DatabaseURLFrom, "WHISPERER_DATABASE_URL=postgres://u:") {
		t.Errorf("origin %q shows the password or not the variable", c.DatabaseURLFrom)
	}

	// The default: no origin, the working directory's path.
	t.Chdir(t.TempDir())
	if c = mustLoad(t, LoadOptions{}); c.Database.URL != "sqlite://whisperer.db" || c.DatabaseURLFrom != "" {
		t.Errorf("default: url %q from %q", c.Database.URL, c.DatabaseURLFrom)
	}
}

// A database.url that is not a string is reported, not resolved.
func TestSQLitePathNotAString(t *testing.T) {
	path := writeFile(t, "database:\n  url: [1, 2]\n")
	_, err := load(LoadOptions{File: path, Getenv: env(nil)})
	if err == nil || !strings.Contains(err.Error(), "database.url") {
		t.Errorf("Load = %v, want an error naming database.url", err)
	}
}
