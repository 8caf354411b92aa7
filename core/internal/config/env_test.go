package config_test

import (
	"github.com/whisperer/whisperer/core/app"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/config"
)

func TestUnknownEnvWarnsWithSuggestion(t *testing.T) {
	got := config.UnknownEnv([]string{
		"WHISPERER_DATABSE_URL=sqlite://secret-path.db", "WHISPERER_DATABSE_URL=again",
		"WHISPERER_DATABASE_URL=sqlite://w.db", "WHISPERER_CONFIG=/etc/w.yaml",
		"WHISPERER_TEST_POSTGRES=1", "WHISPERER_TOKEN=abc", "PATH=/bin", "WHISPERER_ZZZZZZZZZZZZZZZZZZ=1",
		"WHISPERER_DELIVERY_MAX_RETRY=3",
	})
	want := []string{
		"the environment variable WHISPERER_DATABSE_URL is not a Whisperer setting and is ignored; did you mean WHISPERER_DATABASE_URL?",
		"the environment variable WHISPERER_DELIVERY_MAX_RETRY is not a Whisperer setting and is ignored; did you mean WHISPERER_DELIVERY_MAX_RETRIES?",
		"the environment variable WHISPERER_ZZZZZZZZZZZZZZZZZZ is not a Whisperer setting and is ignored",
	}
	if !slices.Equal(got, want) {
		t.Errorf("UnknownEnv:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Load warns through Warn, once per variable, and still loads.
func TestLoadWarnsAboutUnknownEnv(t *testing.T) {
	env := []string{"WHISPERER_CONFIG=" + os.DevNull, "WHISPERER_SERVER_ADR=127.0.0.1:1"}
	var warnings []string
	c, err := config.Load(config.LoadOptions{
		Getenv:  func(k string) string { return map[string]string{"WHISPERER_CONFIG": os.DevNull}[k] },
		Environ: env, Warn: func(m string) { warnings = append(warnings, m) },
		Owned: app.OwnedDefaults,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "did you mean WHISPERER_SERVER_ADDR?") || c.Server.Addr == "127.0.0.1:1" {
		t.Errorf("warnings %q, addr %s", warnings, c.Server.Addr)
	}
}

// No variable that code in the repository reads is warned about: the
// tests', the benchmarks', the clients' and the examples'.
func TestUnknownEnvSparesVariablesReadElsewhere(t *testing.T) {
	root := "../../.."
	name := regexp.MustCompile(`\bWHISPERER_[A-Z0-9_]*[A-Z0-9]`)
	read := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		// Where the warning itself is tested, misspellings are on purpose;
		// prose may quote one too.
		if strings.HasPrefix(rel, "core/internal/config/") || rel == "cmd/whisperer/edges_test.go" ||
			!slices.Contains([]string{".go", ".py", ".js", ".sh", ".rb", ".php", ".yaml", ".service"}, filepath.Ext(path)) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range name.FindAllString(string(b), -1) {
			read[n] = append(read[n], rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(read) < 10 {
		t.Fatalf("found only %d variables: %v", len(read), read)
	}
	var environ []string
	for n := range read {
		environ = append(environ, n+"=1")
	}
	for _, w := range config.UnknownEnv(environ) {
		t.Errorf("%s (read in %v)", w, read[strings.Fields(w)[3]])
	}
}
