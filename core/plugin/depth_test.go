package plugin

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
)

// FuzzLimitDepth: the rewriter reads untrusted bytes before wazero does. It
// must never panic, and what it passes on must compile whenever the
// original does.
func FuzzLimitDepth(f *testing.F) {
	wasms, _ := filepath.Glob("testdata/*.wasm")
	wasms = append(wasms, filepath.Join("..", "..", "examples", "custom-countdown", "c", "custom.wasm"))
	for _, p := range wasms {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x07\x05\x01\x0fwhisperer:depth"))
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	f.Fuzz(func(t *testing.T, bin []byte) {
		out, err := limitDepth(bin)
		if err != nil {
			return // refused before wazero sees it
		}
		orig, err := rt.CompileModule(ctx, bin)
		if err != nil {
			return
		}
		orig.Close(ctx)
		m, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("the rewritten module does not compile: %v", err)
		}
		m.Close(ctx)
	})
}
