package config

import (
	"fmt"
	"slices"
	"strings"
)

// A misspelled key in the file is an error (checkKeys); a misspelled
// variable cannot be, since the environment holds other programs'
// variables too. Load warns about it instead.

// foreignEnv are WHISPERER_* variables that other parts of the project
// read, not the server: the API clients (clients/), the receiving
// examples, compose's .env. They are not warned about.
var foreignEnv = []string{
	"WHISPERER_URL", "WHISPERER_TOKEN", "WHISPERER_BASE_PATH", "WHISPERER_MAX_BODY_BYTES", // clients/python
	"WHISPERER_SECRET", "WHISPERER_PREVIOUS_SECRET", // docs/RECEIVING.md's receivers
	"WHISPERER_ENCRYPTION_KEY", // compose.yaml's .env
}

// foreignEnvPrefixes start variables of the tests, the benchmarks and the
// clients' tuning, never the server's.
var foreignEnvPrefixes = []string{"WHISPERER_TEST_", "WHISPERER_BENCH_", "WHISPERER_CLIENT_", "WHISPERER_RSS_"}

// UnknownEnv returns a warning for each WHISPERER_* variable of environ
// ("NAME=value" entries, as os.Environ gives them) that names no key and
// that no other part of the project reads, suggesting the closest known
// name. Values are never quoted: one may be a secret.
func UnknownEnv(environ []string) []string {
	known := map[string]bool{EnvPrefix + "CONFIG": true}
	names := []string{EnvPrefix + "CONFIG"}
	for _, k := range Keys() {
		known[EnvName(k)] = true
		names = append(names, EnvName(k))
	}
	for _, n := range foreignEnv {
		known[n] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || known[name] || seen[name] ||
			slices.ContainsFunc(foreignEnvPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		seen[name] = true
		msg := fmt.Sprintf("the environment variable %s is not a Whisperer setting and is ignored", name)
		if best := closest(name, names, 4); best != "" {
			msg += fmt.Sprintf("; did you mean %s?", best)
		}
		out = append(out, msg)
	}
	slices.Sort(out)
	return out
}
