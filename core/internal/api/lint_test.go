package api_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// OpenAPI 3.0 has no null type: "nullable" only widens a schema's "type",
// and a "nullable" beside a $ref or an allOf with no type means nothing to
// most generators (redocly's nullable-type-sibling rule). Every nullable
// schema here has its type; nullable references are anyOf [X, Null].
func TestOpenAPINullableHasType(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			if v["nullable"] == true {
				if _, ok := v["type"]; !ok {
					t.Errorf("%s: nullable without type", path)
				}
			}
			for k, c := range v {
				walk(c, path+"/"+k)
			}
		case []any:
			for _, c := range v {
				walk(c, path+"/[]")
			}
		}
	}
	walk(doc, "#")
}

// The whole document through redocly's recommended rules (redocly.yaml
// makes each an error and says which two are off and why). It needs npx and the npm registry, so
// it runs when WHISPERER_TEST_REDOCLY=1, as .ci/run sets.
func TestOpenAPIRedoclyLint(t *testing.T) {
	if os.Getenv("WHISPERER_TEST_REDOCLY") != "1" {
		t.Skip("set WHISPERER_TEST_REDOCLY=1 to lint openapi.json with redocly (needs npx and the npm registry)")
	}
	if _, err := exec.LookPath("npx"); err != nil {
		t.Fatal("WHISPERER_TEST_REDOCLY=1 but npx is not installed")
	}
	out, err := exec.Command("npx", "--yes", "@redocly/cli@2.77.0", "lint", "--format", "stylish", "openapi.json").CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint: %v\n%s", err, out)
	}
}
