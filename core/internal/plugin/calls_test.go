package plugin

import (
	"cmp"
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/whisperer/whisperer/sdk/abi"
)

// BenchmarkTransformGoCalls counts the guest functions entered by one
// BenchmarkTransformGo call (calls/op), through the record export: a
// figure the machine's load does not move, unlike the guest's time, which
// follows it (each entry costs a Go guest ~100–150 ns, sdk/ABI.md §8).
// With -v it logs the most entered functions. The module is instantiated
// without the host, with wazero's function listener, which slows it.
func BenchmarkTransformGoCalls(b *testing.B) {
	bin, err := os.ReadFile(goWasm(b, "./examples/transform"))
	if err != nil {
		b.Fatal(err)
	}
	counts := map[string]*int{}
	ctx := experimental.WithFunctionListenerFactory(context.Background(), callCounter(counts))
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	_, err = rt.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().WithFunc(func(int32, int32, int32) {}).Export(abi.ImportLog).
		NewFunctionBuilder().WithFunc(func(int32) int32 { return 0 }).Export(abi.ImportLogEnabled).
		Instantiate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithStartFunctions(abi.ExportInitialize))
	if err != nil {
		b.Fatal(err)
	}
	in, kwargs := benchTransformInput(b), chatKwargs
	input := append([]byte(nil), kwargs...)
	var doc transformDoc
	input = doc.append(input, in)
	docLen := len(input) - len(kwargs)
	input = append(input, in.Body...)
	buf := &inputBuf{b: input}
	buf.index(kwargs, int(doc.spans[abi.TSpanPayload].off), len(in.Payload))
	ixLen := len(buf.b) - len(input)
	input = doc.record(buf.b, in)
	recLen := len(input) - len(buf.b)
	r, err := mod.ExportedFunction(abi.ExportAlloc).Call(ctx, uint64(len(input)))
	if err != nil {
		b.Fatal(err)
	}
	ptr := uint32(r[0])
	tr := mod.ExportedFunction(abi.ExportTransformRecord)
	call := func() {
		mod.Memory().Write(ptr, input)
		// The example's only transform: index 0.
		r, err := tr.Call(ctx, 0, uint64(ptr), uint64(len(kwargs)), uint64(docLen), uint64(len(in.Body)), uint64(ixLen), uint64(recLen))
		if err != nil || int64(r[0]) <= 0 {
			b.Fatalf("transform: %v, %d", err, int64(r[0]))
		}
		out, _ := mod.Memory().Read(uint32(r[0]>>32), uint32(r[0]))
		var res struct{ Body json.RawMessage }
		if json.Unmarshal(out, &res) != nil || string(res.Body) != `{"text":"package-created package-name 1.2.3: paid"}` {
			b.Fatalf("transform answered %s", out)
		}
	}
	call() // kwargs prepared, buffers grown
	for _, n := range counts {
		*n = 0
	}
	b.ResetTimer()
	for range b.N {
		call()
	}
	b.StopTimer()
	type fn struct {
		name string
		n    int
	}
	var fns []fn
	total := 0
	for name, n := range counts {
		if *n > 0 {
			fns, total = append(fns, fn{name, *n}), total+*n
		}
	}
	slices.SortFunc(fns, func(x, y fn) int { return cmp.Compare(y.n, x.n) })
	for _, f := range fns[:min(len(fns), 12)] {
		b.Logf("%6.2f %s", float64(f.n)/float64(b.N), f.name)
	}
	b.ReportMetric(float64(total)/float64(b.N), "calls/op")
}

// callCounter counts entries per function into counts.
type callCounter map[string]*int

func (c callCounter) NewFunctionListener(d api.FunctionDefinition) experimental.FunctionListener {
	n := new(int)
	c[d.DebugName()] = n
	return entryCount{n}
}

type entryCount struct{ n *int }

func (e entryCount) Before(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
	*e.n++
}
func (entryCount) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}
func (entryCount) Abort(context.Context, api.Module, api.FunctionDefinition, error)    {}
