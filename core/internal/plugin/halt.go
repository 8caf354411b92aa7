package plugin

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// A call that runs past its limit, or whose caller gives up, is stopped by
// the host's own check rather than wazero's. With close-on-context-done,
// wazero starts a goroutine for every call to watch its context (and with
// a deadline each call also made a timer): on this project's machines that
// was 2.2 µs of a 3.9 µs countdown call, where a bare call into wazero
// costs 0.04 µs; and every loop iteration left native code for Go.
//
// Instead limitDepth gives the module two mutable i32 globals, a budget and
// a halt flag, and a check (haltCheck) at the top of every loop and on
// entry to every function (in its depth wrapper, or at the top of a leaf):
// the check spends the budget by the code's size, and when it is spent,
// refills it, leaves native code for Go with `memory.grow 0` (where the Go
// runtime can stop the goroutine for a garbage collection: native code
// cannot be preempted, and a guest looping without ever leaving it would
// hold up every goroutine of the process at the next collection) and traps
// when the flag is set. Bulk memory and table instructions spend by their
// length, a call of a host function all of the budget. So a guest leaves
// native code at least every ~64 KiB of code run, ~256 KiB of memory filled
// or copied (tens of µs) or host call, and cannot run on past a set flag
// (a host function runs to its end).
//
// One watchdog per host looks at the calls in flight every few
// milliseconds and sets the flag of a late one; the host, which knows it
// asked, reports the trap as the limit.

// haltExport names the halt flag; startExport the module's start function,
// which limitDepth exports instead of letting instantiation run it (an
// instance's flag can only be set once instantiation returned).
const (
	haltExport  = "whisperer:halt"
	startExport = "whisperer:start"
)

// budget is what a guest may spend between two visits to Go: a unit is
// about 16 bytes of code, or 64 bytes of a bulk memory instruction.
const budget = 1 << 12

// haltCheck appends the check that spends weight (at most budget) of the
// budget global; halt is the flag, the global after it.
func haltCheck(b []byte, tick uint32, weight int) []byte {
	b = binary.AppendUvarint(append(b, 0x23), uint64(tick))
	b = appendPaddedConst(b, weight)
	b = binary.AppendUvarint(append(b, 0x6b, 0x24), uint64(tick))
	return haltTest(b, tick)
}

// haltTest appends: when the budget global is spent, refill it, visit Go
// and trap if the flag (the next global) is set.
func haltTest(b []byte, tick uint32) []byte {
	b = binary.AppendUvarint(append(b, 0x23), uint64(tick))
	b = append(b, 0x41, 0x00, 0x4c, 0x04, 0x40) // i32.const 0; i32.le_s; if
	b = appendSLEB(append(b, 0x41), budget)
	b = binary.AppendUvarint(append(b, 0x24), uint64(tick))
	b = append(b, 0x41, 0x00, 0x40, 0x00, 0x1a) // memory.grow 0; drop
	b = binary.AppendUvarint(append(b, 0x23), uint64(tick+1))
	return append(b, 0x04, 0x40, 0x00, 0x0b, 0x0b) // if unreachable end; end
}

// appendPaddedConst appends i32.const v (clamped to budget) in a fixed five
// bytes, so that a loop's weight can be written once its end is known.
func appendPaddedConst(b []byte, v int) []byte {
	v = min(max(v, 1), budget)
	return append(b, 0x41, byte(v)|0x80, byte(v>>7)|0x80, byte(v>>14)|0x80, byte(v>>21)|0x80, byte(v>>28)&0x07)
}

// weight is the budget a stretch of n bytes of code spends.
func weight(n int) int { return 1 + n>>4 }

// haltSite is what instrument needs of the module.
type haltSite struct {
	tick    uint32 // the budget global; the flag is the next
	imports uint32 // imported functions: indices below are the host's
	// indirect: a call_indirect may reach an import (an element segment
	// or a ref.func names one), so it is checked like a call to one.
	indirect bool
}

// maxLocals bounds a function's params and locals, which the bulk
// instructions' local is added to.
const maxLocals = 50000

// instrument returns a function's body (its locals, then code) with a
// haltCheck at the top of every loop (and of the body when leaf: a leaf has
// no depth wrapper), a spend after every bulk memory or table instruction,
// and a visit to Go after every call of an import (a host function's time
// is not the guest's code: a loop of calls of an expensive one, random_get
// of 32 MiB, must meet the flag after each). np is the function's parameter
// count and nLocals its declared locals' count: a body with bulk
// instructions gets one more i32 local, for their length. It reports
// whether the code names an import by ref.func. It decodes every
// instruction of WebAssembly 2.0 (what wazero enables by default); others
// are reported as malformed.
func instrument(locals, code []byte, np uint32, nLocals uint64, leaf bool, site haltSite) (_ []byte, refImport bool, _ error) {
	if nLocals+uint64(np) >= maxLocals {
		return nil, false, fmt.Errorf("a function with %d params and locals is over the host's limit of %d", nLocals+uint64(np), maxLocals)
	}
	tick := site.tick
	length := uint32(np) + uint32(nLocals) // the new local's index
	var out []byte
	if leaf {
		out = haltCheck(out, tick, weight(len(code)))
	}
	r := &reader{b: code}
	start := 0 // of the code not yet copied
	// Per open block: a loop's weight's offset in out and its code's in
	// code, or -1.
	type block struct{ weight, code int }
	open := []block{{-1, 0}}
	bulk := false
	for len(r.b) > 0 && r.err == nil {
		at := len(code) - len(r.b)
		op := r.byte()
		switch {
		case op == 0x03: // loop blocktype
			r.blockType()
			after := len(code) - len(r.b)
			out = append(out, code[start:after]...)
			start = after
			// haltCheck: global.get tick, then i32.const and the weight.
			open = append(open, block{len(out) + 2 + len(binary.AppendUvarint(nil, uint64(tick))), after})
			out = haltCheck(out, tick, 1)
		case op == 0x02 || op == 0x04: // block, if
			r.blockType()
			open = append(open, block{-1, 0})
		case op == 0x0b: // end
			if len(open) == 0 {
				r.fail("end without a block")
				break
			}
			if b := open[len(open)-1]; b.weight >= 0 {
				copy(out[b.weight:], appendPaddedConst(nil, weight(at-b.code))[1:])
			}
			open = open[:len(open)-1]
		case op <= 0x01, op == 0x05, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1,
			op >= 0x45 && op <= 0xc4:
			// no immediate
		case op == 0x10: // call
			if r.u32() < site.imports {
				end := len(code) - len(r.b)
				out = haltCheck(append(out, code[start:end]...), tick, budget)
				start = end
			}
		case op == 0xd2: // ref.func
			refImport = refImport || r.u32() < site.imports
		case op == 0x0c, op == 0x0d, op >= 0x20 && op <= 0x26:
			r.u32() // label, local, global or table index
		case op == 0x0e: // br_table
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				r.u32()
			}
			r.u32()
		case op == 0x11: // call_indirect type table
			r.u32()
			r.u32()
			if site.indirect {
				end := len(code) - len(r.b)
				out = haltCheck(append(out, code[start:end]...), tick, budget)
				start = end
			}
		case op == 0x1c: // select with one value type (what wazero compiles)
			if r.u32() != 1 || !valueType(r.byte()) {
				r.fail("a typed select other than one value type")
			}
		case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
			r.u32()
			r.u32()
		case op == 0x3f, op == 0x40: // memory.size, memory.grow: memory index
			r.u32()
		case op == 0x41, op == 0x42: // i32.const, i64.const
			r.sleb()
		case op == 0x43:
			r.bytes(4)
		case op == 0x44:
			r.bytes(8)
		case op == 0xd0: // ref.null reftype
			r.byte()
		case op == 0xfc:
			if !r.miscImmediates(r.u32()) {
				break
			}
			// A bulk instruction: its length (the top operand) spends
			// budget/64 per 64 bytes, and the budget is checked after.
			bulk = true
			end := len(code) - len(r.b)
			out = append(out, code[start:at]...)
			out = binary.AppendUvarint(append(out, 0x22), uint64(length)) // local.tee
			out = binary.AppendUvarint(append(out, 0x23), uint64(tick))
			out = binary.AppendUvarint(append(out, 0x20), uint64(length))
			out = append(out, 0x41, 0x06, 0x76, 0x6b) // i32.const 6; i32.shr_u; i32.sub
			out = binary.AppendUvarint(append(out, 0x24), uint64(tick))
			out = haltTest(append(out, code[at:end]...), tick)
			start = end
		case op == 0xfd:
			r.vectorImmediates(r.u32())
		default:
			r.fail(fmt.Sprintf("opcode 0x%02x is not WebAssembly 2.0", op))
		}
	}
	if r.err == nil && len(open) != 0 {
		r.fail("a block without an end")
	}
	if r.err != nil {
		return nil, false, r.err
	}
	out = append(out, code[start:]...)
	if !bulk {
		return append(append([]byte(nil), locals...), out...), refImport, nil
	}
	// One more local declaration (count 1, i32) after the others.
	l := &reader{b: locals}
	n := l.u32()
	body := appendVec(l.b, n+1, 0x01, 0x7f)
	return append(body, out...), refImport, nil
}

// valueType reports whether t is a value type of WebAssembly 2.0.
func valueType(t byte) bool {
	switch t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		return true
	}
	return false
}

// elemImports reports whether an element section (its body) puts an
// imported function (index below imports) in a table.
func elemImports(body []byte, imports uint32) (bool, error) {
	r := &reader{b: body}
	found := false
	funcs := func() {
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			found = found || r.u32() < imports
		}
	}
	exprs := func() {
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			found = found || r.constExpr(imports)
		}
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		switch flags := r.u32(); flags {
		case 0:
			r.constExpr(imports)
			funcs()
		case 1, 3:
			r.byte() // elemkind
			funcs()
		case 2:
			r.u32()
			r.constExpr(imports)
			r.byte()
			funcs()
		case 4:
			r.constExpr(imports)
			exprs()
		case 5, 7:
			r.byte() // reftype
			exprs()
		case 6:
			r.u32()
			r.constExpr(imports)
			r.byte()
			exprs()
		default:
			r.fail("unknown element segment")
		}
	}
	return found, r.err
}

// constExpr skips a constant expression and reports whether it names an
// imported function (ref.func).
func (r *reader) constExpr(imports uint32) bool {
	found := false
	for r.err == nil {
		switch op := r.byte(); op {
		case 0x0b:
			return found
		case 0x41, 0x42:
			r.sleb()
		case 0x43:
			r.bytes(4)
		case 0x44:
			r.bytes(8)
		case 0x23:
			r.u32()
		case 0xd0:
			r.byte()
		case 0xd2:
			found = found || r.u32() < imports
		case 0xfd: // v128.const
			if r.u32() != 12 {
				r.fail("a constant expression with a vector instruction other than v128.const")
			}
			r.bytes(16)
		default:
			r.fail(fmt.Sprintf("opcode 0x%02x in a constant expression", op))
		}
	}
	return found
}

// blockType skips a block type: empty, a value type, or a type index (a
// signed LEB128 of up to 33 bits).
func (r *reader) blockType() {
	if len(r.b) > 0 {
		switch r.b[0] {
		case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
			r.b = r.b[1:]
			return
		}
	}
	r.sleb()
}

// sleb skips a signed LEB128 integer of up to 64 bits.
func (r *reader) sleb() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail("bad LEB128 integer")
}

// miscImmediates skips the immediates of 0xfc instruction op and reports
// whether it is a bulk instruction: one whose top operand is a length.
func (r *reader) miscImmediates(op uint32) (bulk bool) {
	switch {
	case op <= 7: // saturating truncations
	case op == 9, op == 13, op == 15, op == 16: // data.drop, elem.drop, table.grow, table.size
		r.u32()
	case op == 11, op == 17: // memory.fill, table.fill
		r.u32()
		return true
	case op == 8, op == 10, op == 12, op == 14: // memory.init, memory.copy, table.init, table.copy
		r.u32()
		r.u32()
		return true
	default:
		r.fail(fmt.Sprintf("instruction 0xfc %d is not WebAssembly 2.0", op))
	}
	return false
}

// vectorImmediates skips the immediates of SIMD (0xfd) instruction op.
func (r *reader) vectorImmediates(op uint32) {
	switch {
	case op <= 11, op == 92, op == 93: // loads and stores: memarg
		r.u32()
		r.u32()
	case op == 12, op == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case op >= 21 && op <= 34: // extract and replace lane
		r.byte()
	case op >= 84 && op <= 91: // load and store lane: memarg, lane
		r.u32()
		r.u32()
		r.byte()
	case op <= 255:
	default:
		r.fail(fmt.Sprintf("instruction 0xfd %d is not WebAssembly 2.0", op))
	}
}

// watchdog stops the plugin calls in flight that pass their limit or whose
// caller gives up, by setting their instance's halt global. Its goroutine
// runs only while calls are in flight. The calls in flight are a list
// threaded through their instances: watching a call allocates nothing (a
// map of them cost ~200 instructions a call).
type watchdog struct {
	tick time.Duration

	mu      sync.Mutex
	calls   *instance // the first call in flight, linked by watched.next
	running bool      // the goroutine
}

// watched is one call in flight.
type watched struct {
	deadline time.Duration // monoNow
	ctx      context.Context
	// halted is why the watchdog stopped the call (errLimit, or the
	// caller's cause), nil while it runs.
	halted error
	// The neighbours in the watchdog's list, under its mu.
	prev, next *instance
}

// newWatchdog returns a watchdog for calls limited to at least shortest:
// it looks every tenth of that, between 1 and 10 ms, so that a call stops
// within about 10% of its limit.
func newWatchdog(shortest time.Duration) *watchdog {
	return &watchdog{tick: min(max(shortest/10, time.Millisecond), 10*time.Millisecond)}
}

// begin watches inst's call from now until end, until deadline or until
// ctx ends.
func (w *watchdog) begin(ctx context.Context, inst *instance, deadline time.Duration) {
	w.mu.Lock()
	inst.watch = watched{deadline: deadline, ctx: ctx, next: w.calls}
	if w.calls != nil {
		w.calls.watch.prev = inst
	}
	w.calls = inst
	if !w.running {
		w.running = true
		go w.loop()
	}
	w.mu.Unlock()
}

// end stops watching inst's call and returns why the watchdog halted it,
// or nil. A halted instance must not be called again: its global stays
// set, and the call may have stopped anywhere.
func (w *watchdog) end(inst *instance) error {
	w.mu.Lock()
	c := &inst.watch
	if c.prev != nil {
		c.prev.watch.next = c.next
	} else {
		w.calls = c.next
	}
	if c.next != nil {
		c.next.watch.prev = c.prev
	}
	halted := c.halted
	*c = watched{}
	w.mu.Unlock()
	return halted
}

// haltAll stops every call in flight, for cause.
func (w *watchdog) haltAll(cause error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for inst := w.calls; inst != nil; inst = inst.watch.next {
		if inst.watch.halted == nil {
			inst.haltFor(cause)
		}
	}
}

// haltFor sets inst's halt flag: its call traps at its next check, for
// cause. The watchdog's mu is held.
func (inst *instance) haltFor(cause error) {
	inst.watch.halted = cause
	if inst.halt != nil {
		inst.halt.Set(1)
	}
}

// loop checks the calls every tick until there are none.
func (w *watchdog) loop() {
	for {
		time.Sleep(w.tick)
		w.mu.Lock()
		if w.calls == nil {
			w.running = false
			w.mu.Unlock()
			return
		}
		now := monoNow()
		for inst := w.calls; inst != nil; inst = inst.watch.next {
			switch c := &inst.watch; {
			case c.halted != nil:
			case c.ctx.Err() != nil:
				inst.haltFor(context.Cause(c.ctx))
			case now > c.deadline:
				inst.haltFor(errLimit)
			}
		}
		w.mu.Unlock()
	}
}
