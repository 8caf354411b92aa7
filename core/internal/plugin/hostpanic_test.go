package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestHostPanicMidCall: a panic of the host's own code during a call
// (after the guest ran) is that call's error; the instance is dropped, the
// watch ended and the slot released, so that more calls than the pool has
// slots still run, and Stop closes the runtime.
func TestHostPanicMidCall(t *testing.T) {
	h, sink, v := stressHost(t, 2)
	cd := sink.countdown(t, "spin")
	ctx := context.Background()
	for i := range 5 { // more than the pool's 2 slots: a leaked slot blocks the third
		err := v.call(ctx, v.gate.calls, "countdown", time.Second, func(ctx context.Context, inst *instance) error {
			if _, err := inst.input(ctx, []byte(`{}`), 1<<10); err != nil {
				return err
			}
			panic("host bug") // as a nil map or an index out of range would
		})
		if !errors.Is(err, ErrCrashed) || !errors.Is(err, errHostPanic) || !strings.Contains(err.Error(), "host bug") {
			t.Fatalf("call %d: error %v, want ErrCrashed and the host panic named", i, err)
		}
	}
	checkQuiet(t, h, v)
	if n := len(v.idle); n != 0 {
		t.Errorf("%d instances pooled after host panics, want them dropped", n)
	}
	if _, err := cd.Value(ctx, 1, json.RawMessage(`{}`)); err != nil {
		t.Fatalf("a later countdown: %v", err)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.Stop(stopCtx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
