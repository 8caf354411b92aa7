package app_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// The architecture as the compiler sees it (docs/ARCHITECTURE.md): the
// server's packages are under core/internal; only core/app imports them
// as a whole; among themselves they import only the leaves (the domain,
// the lifecycle pattern, the registries' table, the sdk's ABI names); cmd
// imports core/app alone; core/app/apptest is for tests only.
func TestLayout(t *testing.T) {
	const mod = "github.com/whisperer/whisperer/"
	leaves := map[string]bool{
		"core/internal/webhook": true, "core/internal/service": true,
		"core/internal/registry": true, "sdk/abi": true,
		"core/internal/filter": true, // the filter language: store runs it, api validates it
	}
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkg := strings.TrimPrefix(p.ImportPath, mod)
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, mod)
			if !ours {
				continue
			}
			switch {
			case dep == "core/app/apptest":
				t.Errorf("%s imports core/app/apptest, which is for tests only", pkg)
			case strings.HasPrefix(pkg, "cmd/") && strings.HasPrefix(dep, "core/") && dep != "core/app":
				t.Errorf("%s imports %s: cmd reaches the server through core/app only", pkg, dep)
			case strings.HasPrefix(pkg, "core/internal/") && strings.HasPrefix(dep, "core/internal/") &&
				!leaves[dep] && !strings.HasPrefix(pkg, dep+"/") && pkg != "core/internal/store/storetest":
				t.Errorf("%s imports its sibling %s: only core/app wires siblings together", pkg, dep)
			}
		}
	}
}
