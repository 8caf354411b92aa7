package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCustomCountdownEveryLanguage loads the "custom" countdown written in
// Go, WAT and C into a real host and checks they agree.
func TestCustomCountdownEveryLanguage(t *testing.T) {
	srcs := map[string]string{
		"go":  goWasm(t, "./examples/custom-countdown"),
		"wat": filepath.Join("..", "..", "..", "examples", "custom-countdown", "wat", "custom.wasm"),
		"c":   filepath.Join("..", "..", "..", "examples", "custom-countdown", "c", "custom.wasm"),
	}
	ctx := context.Background()
	for lang, src := range srcs {
		t.Run(lang, func(t *testing.T) {
			dir := t.TempDir()
			copyFile(t, src, dir, "custom.wasm")
			sink := newSink()
			startHost(t, testConfig(dir), sink)
			cd := sink.countdown(t, "custom")
			for retry, want := range []int64{0, 5, 20, 15, 40, 25} {
				if got, err := cd.Value(ctx, retry, json.RawMessage(`{"factor": 5}`)); got != want || err != nil {
					t.Errorf("custom(%d) = %d, %v; want %d", retry, got, err, want)
				}
			}
			// The Go example reads a missing factor as 0; WAT and C refuse it.
			if lang != "go" {
				if _, err := cd.Value(ctx, 1, json.RawMessage(`{}`)); err == nil || !strings.Contains(err.Error(), "factor") {
					t.Errorf("missing factor: %v, want an error with the guest's reason", err)
				}
			}
			for kwargs, want := range map[string]string{
				`{"factor": 1}`:   "",
				`{"factor": 0}`:   `{"factor":["Ensure this value is greater than or equal to 1."]}`,
				`{"factor": -3}`:  `{"factor":["Ensure this value is greater than or equal to 1."]}`,
				`{}`:              `{"factor":["This field is required."]}`,
				`{"factor": "x"}`: `{"factor":["A valid integer is required."]}`,
				`[1, 2]`:          `non_field_errors`,
			} {
				clean, fieldErrs, err := cd.Validate(ctx, json.RawMessage(kwargs))
				switch {
				case err != nil:
					t.Errorf("validate %s: %v", kwargs, err)
				case want == "" && (fieldErrs != nil || !json.Valid(clean)):
					t.Errorf("validate %s = %s, %v; want valid", kwargs, clean, fieldErrs)
				case want != "" && !strings.Contains(toJSON(fieldErrs), want):
					t.Errorf("validate %s = %s, want %s", kwargs, toJSON(fieldErrs), want)
				}
			}
		})
	}
}

// TestCommittedWasmIsFresh rebuilds every committed .wasm from its source
// when the toolchain is installed and compares the bytes.
func TestCommittedWasmIsFresh(t *testing.T) {
	root := moduleRoot(t)
	t.Run("wat", func(t *testing.T) {
		if _, err := exec.LookPath("wat2wasm"); err != nil {
			t.Skip("wat2wasm not installed (Debian: apt-get install wabt)")
		}
		wats, _ := filepath.Glob("testdata/*.wat")
		wats = append(wats, filepath.Join(root, "examples", "custom-countdown", "wat", "custom.wat"),
			filepath.Join(root, "examples", "filter", "field-equals.wat"))
		for _, wat := range wats {
			out := filepath.Join(t.TempDir(), "out.wasm")
			if b, err := exec.Command("wat2wasm", wat, "-o", out).CombinedOutput(); err != nil {
				t.Fatalf("wat2wasm %s: %v\n%s", wat, err, b)
			}
			sameBytes(t, strings.TrimSuffix(wat, ".wat")+".wasm", out)
		}
	})
	t.Run("c", func(t *testing.T) {
		if _, err := exec.LookPath("clang"); err != nil || !fileExists("/usr/lib/wasm32-wasi/libc.a") {
			t.Skip("clang or wasi-libc not installed (Debian: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32)")
		}
		v, _ := exec.Command("clang", "--version").Output()
		if !bytes.Contains(v, []byte("version 14.")) {
			t.Skipf("the committed C output was built with clang 14; this is %s", bytes.SplitN(v, []byte("\n"), 2)[0])
		}
		out := filepath.Join(t.TempDir(), "custom.wasm")
		cmd := exec.Command("clang", "--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-s", "-I", "sdk",
			"-o", out, "examples/custom-countdown/c/custom.c")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("clang: %v\n%s", err, b)
		}
		sameBytes(t, filepath.Join(root, "examples", "custom-countdown", "c", "custom.wasm"), out)
	})
}

func sameBytes(t *testing.T, committed, built string) {
	t.Helper()
	a, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s is stale: rebuild it with the command in its source", committed)
	}
}
