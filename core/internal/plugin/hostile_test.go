package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// TestHostile loads every hostile module next to a good one and checks that
// each is refused or contained with a clear error, and that the good one
// (and the hostile ones' healthy entries) keep working.
func TestHostile(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"loop", "membomb", "bigmemory", "trap", "badsig", "nomanifest", "liar",
		"liar2", "badmanifest", "noisy", "absurd", "command", "badimport", "v2", "dup", "hugemax"} {
		copyFile(t, filepath.Join("testdata", name+".wasm"), dir, name+".wasm")
	}
	copyFile(t, filepath.Join("..", "..", "..", "examples", "custom-countdown", "wat", "custom.wasm"), dir, "custom.wasm")
	copyFile(t, goWasm(t, "./core/internal/plugin/testdata/gopanic"), dir, "gopanic.wasm")
	sink := newSink()
	cfg := testConfig(dir)
	cfg.CallTimeout = 50 * time.Millisecond
	cfg.CallbackTimeout = 200 * time.Millisecond
	h, logs := startHost(t, cfg, sink)
	ctx := context.Background()

	// Refused at load, each with a reason naming the file.
	for file, want := range map[string]string{
		"bigmemory.wasm":   "over limit",
		"badsig.wasm":      "export whisperer_countdown has signature (i32, i32) -> (i64), want (i32, i32, i32, i32) -> (i64)",
		"nomanifest.wasm":  "does not export whisperer_manifest",
		"liar.wasm":        `manifest declares countdown "b" (index 1) but its validator fails`,
		"liar2.wasm":       "manifest declares callbacks but the module does not export whisperer_callback",
		"badmanifest.wasm": "outside memory",
		"command.wasm":     "exports _start, so it is a WASI command",
		"badimport.wasm":   "imports env.sleep, which the host does not provide",
		"v2.wasm":          "speaks whisperer_abi_v2 but this server speaks ABI v1",
		"dup.wasm":         `key "custom" is already registered by custom.wasm`,
	} {
		i := infoOf(t, h, file)
		if i.Loaded || !strings.Contains(i.Error, want) || !strings.Contains(i.Error, "plugin "+file) {
			t.Errorf("%s: loaded=%v error %q, want it to contain %q and the file name", file, i.Loaded, i.Error, want)
		}
	}
	if e := infoOf(t, h, "badsig.wasm").Error; !strings.Contains(e, "whisperer_alloc has signature (i64)") ||
		!strings.Contains(e, "whisperer_callback_record has signature (i32, i32, i32) -> (i32), want (i32, i32, i32, i32) -> (i32)") {
		t.Errorf("badsig: every problem should be listed: %s", infoOf(t, h, "badsig.wasm").Error)
	}

	// The files the table below calls must have loaded; if one did not,
	// say why here rather than as "not registered" inside a subtest.
	for _, file := range []string{"loop.wasm", "membomb.wasm", "hugemax.wasm", "trap.wasm", "noisy.wasm", "gopanic.wasm", "custom.wasm"} {
		if i := infoOf(t, h, file); !i.Loaded {
			t.Fatalf("%s did not load: %s", file, i.Error)
		}
	}
	good := sink.countdown(t, "custom")
	checkGood := func(t *testing.T) {
		t.Helper()
		if v, err := good.Value(ctx, 3, json.RawMessage(`{"factor":5}`)); v != 15 || err != nil {
			t.Fatalf("good plugin after hostile call: %d, %v", v, err)
		}
	}

	tests := []struct {
		name    string
		call    func(t *testing.T) error
		wantErr error
		want    string
	}{
		{"infinite loop countdown", func(t *testing.T) error {
			_, err := sink.countdown(t, "loop").Value(ctx, 1, json.RawMessage(`{}`))
			return err
		}, ErrTimeout, "50ms"},
		{"infinite loop callback", func(t *testing.T) error {
			return sink.callback(t, "loop")(ctx, &webhook.CallbackDoc{})
		}, ErrTimeout, "200ms"},
		{"memory bomb", func(t *testing.T) error {
			// Growing 64 MiB may take longer than the call limit on a slow
			// machine; a timeout contains it as well as the trap does.
			_, err := sink.countdown(t, "membomb").Value(ctx, 1, json.RawMessage(`{}`))
			if errors.Is(err, ErrTimeout) {
				return fmt.Errorf("%w: %w: unreachable", err, ErrCrashed)
			}
			return err
		}, ErrCrashed, "unreachable"},
		{"declared 4 GiB maximum is lowered to the limit", func(t *testing.T) error {
			_, err := sink.countdown(t, "hugemax").Value(ctx, 1, json.RawMessage(`{}`))
			return err
		}, ErrFailed, "returned -1"},
		{"unreachable", func(t *testing.T) error {
			_, err := sink.countdown(t, "trap").Value(ctx, 1, json.RawMessage(`{}`))
			return err
		}, ErrCrashed, "unreachable"},
		{"out of bounds", func(t *testing.T) error {
			return sink.callback(t, "trap")(ctx, &webhook.CallbackDoc{})
		}, ErrCrashed, "out of bounds"},
		{"negative countdown", func(t *testing.T) error {
			_, err := sink.countdown(t, "negative").Value(ctx, 1, json.RawMessage(`{}`))
			return err
		}, ErrFailed, "returned -5"},
		{"go panic recovered by the SDK", func(t *testing.T) error {
			_, err := sink.countdown(t, "panic").Value(ctx, 1, json.RawMessage(`{}`))
			return err
		}, ErrFailed, "boom in countdown"},
		{"go panic on a goroutine", func(t *testing.T) error {
			return sink.callback(t, "crash")(ctx, callbackDoc(t, 100))
		}, ErrCrashed, "boom on a goroutine"},
		{"go callback error", func(t *testing.T) error {
			return sink.callback(t, "fail")(ctx, callbackDoc(t, 100))
		}, ErrFailed, "receiver said no"},
		{"go sleep cannot outlast the deadline", func(t *testing.T) error {
			return sink.callback(t, "sleep")(ctx, callbackDoc(t, 100))
		}, ErrTimeout, "200ms"},
		{"huge log output", func(t *testing.T) error {
			return sink.callback(t, "noisy")(ctx, &webhook.CallbackDoc{})
		}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // the second call runs on a fresh or reused instance
				err := tc.call(t)
				if tc.wantErr == nil && err != nil {
					t.Fatal(err)
				}
				if tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.want)) {
					t.Fatalf("error %v, want %v containing %q", err, tc.wantErr, tc.want)
				}
				if err != nil && !strings.Contains(err.Error(), "plugin ") {
					t.Errorf("error does not name the plugin: %v", err)
				}
			}
			checkGood(t)
		})
	}

	// The healthy entry of a plugin whose other entry hangs still answers.
	if v, err := sink.countdown(t, "loop").Value(ctx, 0, json.RawMessage(`{}`)); err == nil || v != 0 {
		// idx 0 is the loop; the healthy one is "ok".
		t.Fatalf("loop countdown returned %d, %v", v, err)
	}
	if v, err := sink.countdown(t, "ok").Value(ctx, 0, json.RawMessage(`{}`)); err != nil || v != 1 {
		t.Fatalf("healthy entry of loop.wasm: %d, %v", v, err)
	}
	// Absurd values pass through; the countdown registry clamps them.
	if v, err := sink.countdown(t, "huge").Value(ctx, 1, json.RawMessage(`{}`)); err != nil || v != 1<<62 {
		t.Fatalf("huge = %d, %v", v, err)
	}
	// A caller's own deadline is reported as the caller's, not a plugin fault.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := sink.countdown(t, "loop").Value(short, 0, json.RawMessage(`{}`)); errors.Is(err, ErrTimeout) ||
		!errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller deadline: %v", err)
	}

	l := logs.String()
	if !strings.Contains(l, "plugin output over the per-call limit dropped") {
		t.Error("noisy plugin: no note of dropped output")
	}
	if len(l) > 1<<20 {
		t.Errorf("noisy plugin flooded the log: %d bytes", len(l))
	}
	if !strings.Contains(l, "panic: boom on a goroutine") {
		t.Error("the Go runtime's panic output on stderr is not in the log")
	}
}

// TestHostileFiltersAndTransforms is TestHostile for the filter and
// transform exports: each hostile entry is refused at load or contained
// with a clear error, and the good filter and countdown keep answering.
func TestHostileFiltersAndTransforms(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"evilfilter", "eviltransform", "badext", "nofilter"} {
		copyFile(t, filepath.Join("testdata", name+".wasm"), dir, name+".wasm")
	}
	copyFile(t, filepath.Join("..", "..", "..", "examples", "filter", "field-equals.wasm"), dir, "field-equals.wasm")
	copyFile(t, filepath.Join("..", "..", "..", "examples", "custom-countdown", "wat", "custom.wasm"), dir, "custom.wasm")
	copyFile(t, goWasm(t, "./core/internal/plugin/testdata/gopanic"), dir, "gopanic.wasm")
	sink := newSink()
	cfg := testConfig(dir)
	cfg.CallTimeout = 50 * time.Millisecond
	h, _ := startHost(t, cfg, sink)
	ctx := context.Background()

	for file, wants := range map[string][]string{
		"badext.wasm":   {"export whisperer_transform has signature (i32, i32, i32, i32) -> (i64), want (i32, i32, i32, i32, i32, i32) -> (i64)"},
		"nofilter.wasm": {"manifest declares filters but the module does not export whisperer_filter"},
	} {
		i := infoOf(t, h, file)
		for _, want := range wants {
			if i.Loaded || !strings.Contains(i.Error, want) || !strings.Contains(i.Error, "plugin "+file) {
				t.Errorf("%s: loaded=%v error %q, want it to contain %q and the file name", file, i.Loaded, i.Error, want)
			}
		}
	}
	for _, file := range []string{"evilfilter.wasm", "eviltransform.wasm", "field-equals.wasm", "custom.wasm", "gopanic.wasm"} {
		if i := infoOf(t, h, file); !i.Loaded {
			t.Fatalf("%s did not load: %s", file, i.Error)
		}
	}
	payload := json.RawMessage(`{"status": "paid"}`)
	good := sink.filter(t, "field-equals")
	countdown := sink.countdown(t, "custom")
	checkGood := func(t *testing.T) {
		t.Helper()
		if ok, err := good.Match(ctx, json.RawMessage(`{"field":"status","equals":"paid"}`), "e", payload); !ok || err != nil {
			t.Fatalf("good filter after hostile call: %v, %v", ok, err)
		}
		if v, err := countdown.Value(ctx, 3, json.RawMessage(`{"factor":5}`)); v != 15 || err != nil {
			t.Fatalf("good countdown after hostile call: %d, %v", v, err)
		}
	}
	in := &webhook.TransformInput{EventType: "e", UUID: "u", HookID: 1, URL: "https://r.example/", Payload: payload,
		Headers: map[string]string{"content-type": "application/json"}, Body: []byte(`{"payload":{"status":"paid"}}`)}
	match := func(name string) func(t *testing.T) error {
		return func(t *testing.T) error {
			_, err := sink.filter(t, name).Match(ctx, nil, "e", payload)
			return err
		}
	}
	apply := func(name string) func(t *testing.T) error {
		return func(t *testing.T) error {
			_, err := sink.transform(t, name).Apply(ctx, nil, in)
			return err
		}
	}
	tests := []struct {
		name    string
		call    func(t *testing.T) error
		wantErr error
		want    string
	}{
		{"filter loop", match("floop"), ErrTimeout, "50ms"},
		{"filter trap", match("ftrap"), ErrCrashed, "unreachable"},
		{"filter answers neither deliver nor skip", match("fcode"), ErrFailed, "returned 7: plugin: guest reported a failure: fcode: kwargs refused"},
		{"filter validator answers invalid JSON", func(t *testing.T) error {
			_, _, err := sink.filter(t, "fvjson").Validate(ctx, json.RawMessage(`{"a":1}`))
			return err
		}, ErrFailed, "not valid JSON"},
		{"go filter panic", match("panic"), ErrFailed, "boom in filter"},
		{"transform loop", apply("tloop"), ErrTimeout, "50ms"},
		{"transform trap", apply("ttrap"), ErrCrashed, "unreachable"},
		{"transform huge output", apply("thuge"), ErrCrashed, "result of 2097152 bytes is over the 1048576 byte limit"},
		{"transform invalid JSON", apply("tinvalid"), ErrFailed, "result document is not a valid JSON object"},
		{"transform output outside memory", apply("toutside"), ErrCrashed, "outside memory"},
		{"transform header injection", apply("tbadheader"), ErrFailed, `result header "X-Bad" has a control character`},
		{"transform error", apply("tnegative"), ErrFailed, "returned -3: plugin: guest reported a failure: tnegative: template refused"},
		{"go transform panic", apply("panic"), ErrFailed, "boom in transform"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // the second call runs on a fresh or reused instance
				err := tc.call(t)
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %v containing %q", err, tc.wantErr, tc.want)
				}
				if !strings.Contains(err.Error(), "plugin ") {
					t.Errorf("error does not name the plugin: %v", err)
				}
			}
			checkGood(t)
		})
	}

	// The healthy entries of the hostile files still answer.
	if ok, err := sink.filter(t, "fskip").Match(ctx, nil, "e", payload); ok || err != nil {
		t.Errorf("fskip = %v, %v", ok, err)
	}
	if ok, err := sink.filter(t, "fdeliver").Match(ctx, nil, "e", payload); !ok || err != nil {
		t.Errorf("fdeliver = %v, %v", ok, err)
	}
	res, err := sink.transform(t, "tjsonbody").Apply(ctx, nil, in)
	if err != nil || string(res.Body) != `{"text":"hi"}` || !res.Cancel || res.Headers["X-Kind"] != "chat" {
		t.Errorf("tjsonbody = %q %v %v, %v", res.Body, res.Headers, res.Cancel, err)
	}
	// Protected headers come back as the guest set them: refusing them is
	// the server's rule (core/internal/transform), which fails the attempt.
	res, err = sink.transform(t, "tprotected").Apply(ctx, nil, in)
	if err != nil || res.Headers["Webhook-Signature"] != "v1,forged" || res.Headers["Host"] != "evil.example" || string(res.Body) != "x" {
		t.Errorf("tprotected = %q %v, %v", res.Body, res.Headers, err)
	}
	// An input over the limit is refused before the guest runs.
	big := *in
	big.Body = make([]byte, cfg.WithDefaults().maxInput())
	if _, err := sink.transform(t, "tjsonbody").Apply(ctx, nil, &big); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "byte limit") {
		t.Errorf("oversized input: %v", err)
	}
	checkGood(t)
}
