package plugin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// FuzzLimitDepth: the rewriter reads untrusted bytes before wazero does. It
// must never panic, and what it passes on must compile whenever the
// original does.
func FuzzLimitDepth(f *testing.F) {
	wasms, _ := filepath.Glob("testdata/*.wasm")
	wasms = append(wasms, filepath.Join("..", "..", "..", "examples", "custom-countdown", "c", "custom.wasm"))
	for _, p := range wasms {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x07\x05\x01\x0fwhisperer:depth"))
	f.Add(reservedExport(peakExport))
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

// reservedExport is a module with a memory whose one function, which
// calls itself (so it is wrapped), is exported as name.
func reservedExport(name string) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x05\x03\x01\x00\x01")
	b = append(b, 0x07, byte(len(name)+4), 0x01, byte(len(name)))
	b = append(append(b, name...), 0x00, 0x00)
	return append(b, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x10, 0x00, 0x0b)
}

// TestLimitDepthReservedNames: a module exporting a name of the depth
// check's globals is refused, not compiled with two exports of one name.
func TestLimitDepthReservedNames(t *testing.T) {
	if _, err := limitDepth(reservedExport("ok")); err != nil {
		t.Fatalf("limitDepth(export ok) = %v", err)
	}
	for _, name := range []string{depthExport, peakExport, haltExport, startExport} {
		if _, err := limitDepth(reservedExport(name)); err == nil || !strings.Contains(err.Error(), name+", a name the host reserves") {
			t.Errorf("limitDepth(export %s) = %v, want it refused", name, err)
		}
	}
}

// A tiny module declaring a huge vector is refused before wazero sizes
// anything from the count (it allocated 6 GiB for the first one, found by
// FuzzLimitDepth).
func TestLimitDepthRefusesImpossibleCounts(t *testing.T) {
	for name, bin := range map[string]string{
		"data segments": "\x00asm\x01\x00\x00\x00\x0b\x04\xff\xff\xff\x37",
		"types":         "\x00asm\x01\x00\x00\x00\x01\x05\xff\xff\xff\xff\x0f",
		"functions":     "\x00asm\x01\x00\x00\x00\x03\x04\x80\x80\x80\x01",
		"data count":    "\x00asm\x01\x00\x00\x00\x0c\x04\x80\x80\x80\x01",
	} {
		_, err := limitDepth([]byte(bin))
		if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), "elements in") {
			t.Errorf("%s: limitDepth = %v, want a malformed count", name, err)
		}
	}
	// A count that fits is not refused by the check.
	if _, err := limitDepth([]byte("\x00asm\x01\x00\x00\x00\x01\x01\x00")); err != nil {
		t.Errorf("an empty type section: %v", err)
	}
}

// A table is bounded like a memory: a larger declared minimum is refused,
// and every table gets a maximum, so table.grow cannot take the Go heap.
func TestLimitDepthBoundsTables(t *testing.T) {
	huge, err := os.ReadFile("testdata/hugetable.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := limitDepth(huge); err == nil || !strings.Contains(err.Error(), "over the host's limit") {
		t.Errorf("hugetable: limitDepth = %v, want the table refused", err)
	}
	grow, err := os.ReadFile("testdata/tablegrow.wasm")
	if err != nil {
		t.Fatal(err)
	}
	out, err := limitDepth(grow)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	m, err := rt.Instantiate(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.ExportedFunction("grow").Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int32(res[0]) != -1 {
		t.Errorf("table.grow by 10^7 entries returned %d, want -1 (refused)", int32(res[0]))
	}
}
