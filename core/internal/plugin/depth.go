package plugin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// wazero grows a call's native stack by doubling it up to ~100 MB before it
// traps a runaway recursion, without checking the deadline on the way: one
// call of a recursing plugin held ~150 MB for up to 0.8 s. It has no
// option to lower that ceiling, so the host counts depth in the guest:
// limitDepth gives every function a wrapper that adds an estimate of the
// function's frame to a counter on entry, traps when the counter would pass
// stackBudget, and subtracts it on return.

// stackBudget bounds the estimated frames of one call's wasm stack.
const stackBudget = 8 << 20

// depthExport names the counter, so that the host can tell a trap of the
// depth check (which sets it to depthExceeded) from the guest's own.
// peakExport names the deepest the counter has been in the instance's
// life: wazero keeps a call's grown native stack for the next calls, so
// the host does not pool an instance past keepDepth (version.release).
const (
	depthExport   = "whisperer:depth"
	peakExport    = "whisperer:depthpeak"
	depthExceeded = 1<<32 - 1
)

// frameCost estimates the native frame of a function with n params and
// locals (the wrapper's own frame included): wazero keeps each in a slot of
// at most 16 bytes (v128), plus spills and the return address.
func frameCost(n uint64) uint32 {
	return uint32(min(128+16*n, stackBudget))
}

var errMalformed = errors.New("malformed module")

// reader decodes the WebAssembly binary format; its first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errMalformed, what)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) u32() uint32 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n > 5 || v > 1<<32-1 {
		r.fail("bad LEB128 integer")
		return 0
	}
	r.b = r.b[n:]
	return uint32(v)
}

func (r *reader) bytes(n uint32) []byte {
	if uint64(n) > uint64(len(r.b)) {
		r.fail("unexpected end")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) name() string { return string(r.bytes(r.u32())) }

// limits skips a table's or memory's limits.
func (r *reader) limits() {
	if flags := r.byte(); flags&1 != 0 {
		r.u32()
	}
	r.u32()
}

type section struct {
	id   byte
	body []byte
}

// sectionRank is the order the binary format requires of known sections.
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12}

// limitDepth returns bin with every defined function wrapped in a depth
// check (see stackBudget), a halt check (halt.go) on entry to each wrapper
// and at the top of every loop, and the start function exported as
// startExport instead of run by instantiation. It understands the
// features wazero enables by default (WebAssembly 2.0); anything else is
// reported as malformed.
func limitDepth(bin []byte) ([]byte, error) {
	if len(bin) < 8 || !bytes.Equal(bin[:8], []byte("\x00asm\x01\x00\x00\x00")) {
		return nil, fmt.Errorf("%w: not a WebAssembly 1.0 binary", errMalformed)
	}
	var (
		secs                      []section
		params                    []uint32 // by type index
		importFuncs, importGlobal uint32
		funcTypes                 []uint32
		hasCode                   bool
		start                     = -1 // the start function, exported instead (startExport)
		hasMemory                 bool
		tableImports              bool // an import may be put in a table (haltSite.indirect)
	)
	r := &reader{b: bin[8:]}
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		body := r.bytes(r.u32())
		if err := checkCount(id, body, len(bin)); err != nil {
			return nil, err
		}
		s := &reader{b: body}
		switch id {
		case 1: // types
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				if s.byte() != 0x60 {
					s.fail("a type other than a function type")
				}
				np := s.u32()
				s.bytes(np)
				s.bytes(s.u32())
				params = append(params, np)
			}
		case 2: // imports
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				s.name()
				s.name()
				switch s.byte() {
				case 0:
					s.u32()
					importFuncs++
				case 1:
					s.byte()
					s.limits()
				case 2:
					s.limits()
					hasMemory = true
				case 3:
					s.bytes(2)
					importGlobal++
				default:
					s.fail("unknown import kind")
				}
			}
		case 4: // tables
			var err error
			if body, err = boundTables(body); err != nil {
				return nil, err
			}
		case 5:
			hasMemory = hasMemory || s.u32() > 0
			s.b = nil
		case 6: // globals: a funcref global may hold an import
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				s.byte()
				s.byte()
				tableImports = s.constExpr(importFuncs) || tableImports
			}
		case 9:
			found, err := elemImports(body, importFuncs)
			if err != nil {
				return nil, err
			}
			tableImports = tableImports || found
			s.b = nil
		case 3: // functions
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				funcTypes = append(funcTypes, s.u32())
			}
		case 7: // exports
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				if name := s.name(); name == depthExport || name == peakExport || name == haltExport || name == startExport {
					s.fail("exports " + name + ", a name the host reserves")
				}
				s.byte()
				s.u32()
			}
		case 8:
			start = int(s.u32())
			if s.err != nil {
				return nil, s.err
			}
			continue
		case 10:
			hasCode = true
		case 0:
			if strings.HasPrefix(s.name(), ".debug_") {
				continue // its code offsets would be wrong; wazero only uses it for traces
			}
		}
		if s.err != nil {
			return nil, s.err
		}
		secs = append(secs, section{id, body})
	}
	if r.err != nil {
		return nil, r.err
	}
	for _, t := range funcTypes {
		if int(t) >= len(params) {
			return nil, fmt.Errorf("%w: function type %d out of range", errMalformed, t)
		}
	}
	if len(funcTypes) == 0 || !hasCode {
		return bin, nil // nothing runs but imports (a start section may call one)
	}

	if !hasMemory {
		// The halt check visits Go through memory.grow (halt.go).
		return nil, fmt.Errorf("%w: a plugin module needs a memory", errMalformed)
	}

	// The new mutable i32 globals: the depth counter, its peak, the halt
	// budget and flag (halt.go); and their exports (and the start
	// function's).
	global := importGlobal
	newGlobals := bytes.Repeat([]byte{0x7f, 0x01, 0x41, 0x00, 0x0b}, 2)
	newGlobals = append(appendSLEB(append(newGlobals, 0x7f, 0x01, 0x41), budget), 0x0b)
	newGlobals = append(newGlobals, 0x7f, 0x01, 0x41, 0x00, 0x0b)
	if i := find(secs, 6); i >= 0 {
		s := &reader{b: secs[i].body}
		global += s.u32()
		secs[i].body = appendVec(s.b, global-importGlobal+4, newGlobals...)
	} else {
		secs = insertSection(secs, 6, appendVec(nil, 4, newGlobals...))
	}
	tick := global + 2
	var exp []byte
	exports := uint32(0)
	export := func(name string, kind byte, idx uint32) {
		exp = binary.AppendUvarint(exp, uint64(len(name)))
		exp = append(append(exp, name...), kind)
		exp = binary.AppendUvarint(exp, uint64(idx))
		exports++
	}
	for k, name := range []string{depthExport, peakExport} {
		export(name, 0x03, global+uint32(k))
	}
	export(haltExport, 0x03, tick+1)
	if start >= 0 {
		export(startExport, 0x00, uint32(start))
	}
	if i := find(secs, 7); i >= 0 {
		s := &reader{b: secs[i].body}
		n := s.u32()
		secs[i].body = appendVec(s.b, n+exports, exp...)
	} else {
		secs = insertSection(secs, 7, appendVec(nil, exports, exp...))
	}

	// Function i keeps its index (so calls, exports and tables reach the
	// wrapper) and its body moves to index n+i.
	n := uint32(len(funcTypes))
	var fs []byte
	fs = binary.AppendUvarint(fs, uint64(2*n))
	for range 2 {
		for _, t := range funcTypes {
			fs = binary.AppendUvarint(fs, uint64(t))
		}
	}
	site := haltSite{tick: tick, imports: importFuncs, indirect: tableImports}
	for i := range secs {
		switch secs[i].id {
		case 3:
			secs[i].body = fs
		case 10:
			code, refImport, err := rewriteCode(secs[i].body, n, params, funcTypes, global, site)
			if err == nil && refImport && !site.indirect {
				// Code puts an import in a table: check every
				// call_indirect like a call of one.
				site.indirect = true
				code, _, err = rewriteCode(secs[i].body, n, params, funcTypes, global, site)
			}
			if err != nil {
				return nil, err
			}
			secs[i].body = code
		}
	}
	out := append([]byte(nil), bin[:8]...)
	for _, s := range secs {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out, nil
}

// rewriteCode returns the code section (body) of n functions as
// limitDepth wants it: index j a depth wrapper calling index n+j, which
// holds the instrumented body, or the instrumented leaf itself and a body
// never called. It reports whether some code names an import by ref.func.
func rewriteCode(body []byte, n uint32, params, funcTypes []uint32, global uint32, site haltSite) ([]byte, bool, error) {
	s := &reader{b: body}
	if s.u32() != n {
		return nil, false, fmt.Errorf("%w: function and code sections differ in length", errMalformed)
	}
	bodies := binary.AppendUvarint(nil, uint64(2*n))
	var originals []byte
	refImport := false
	for j := range n {
		size := s.u32()
		body := s.bytes(size)
		b := &reader{b: body}
		var locals uint64
		for k := b.u32(); k > 0 && b.err == nil; k-- {
			locals += uint64(b.u32())
			b.byte()
		}
		if s.err != nil || b.err != nil {
			return nil, false, errors.Join(s.err, b.err)
		}
		np := params[funcTypes[j]]
		leaf := !mayCall(b.b)
		checked, ref, err := instrument(body[:len(body)-len(b.b)], b.b, np, locals, leaf, site)
		if err != nil {
			return nil, false, err
		}
		refImport = refImport || ref
		if leaf {
			// A leaf adds one frame above counted ones: it stays in
			// place, and index n+j gets a body never called.
			bodies = binary.AppendUvarint(bodies, uint64(len(checked)))
			bodies = append(bodies, checked...)
			originals = append(originals, 3, 0x00, 0x00, 0x0b) // no locals; unreachable
			continue
		}
		w := wrapper(global, frameCost(uint64(np)+locals), np, site.imports+n+j, weight(len(body)))
		bodies = binary.AppendUvarint(bodies, uint64(len(w)))
		bodies = append(bodies, w...)
		originals = binary.AppendUvarint(originals, uint64(len(checked)))
		originals = append(originals, checked...)
	}
	return append(bodies, originals...), refImport, nil
}

// checkCount refuses a section whose declared element count cannot fit in
// it. wazero sizes its slices from the count before reading the elements:
// a 14-byte module declaring 10^8 data segments made it allocate 6 GiB.
// Every element takes at least one byte, so a vector's count is at most
// its section's remaining length; the data count section (12) declares the
// data segments, which take at least a byte each of the module.
func checkCount(id byte, body []byte, moduleLen int) error {
	if id == 0 || id == 8 || id > 12 {
		return nil // custom, start (an index, not a vector), unknown
	}
	c := &reader{b: body}
	n := c.u32()
	if c.err != nil {
		return c.err
	}
	limit := len(c.b)
	if id == 12 {
		limit = moduleLen
	}
	if uint64(n) > uint64(limit) {
		return fmt.Errorf("%w: section %d declares %d elements in %d bytes", errMalformed, id, n, limit)
	}
	return nil
}

// maxTableEntries bounds each table of a plugin instance. wazero keeps a
// table on the Go heap, 8 bytes an entry, outside memory_limit_mb, and
// lets one grow to 2^27 entries: a plugin declaring (or growing to) 10^7
// entries took 76 MiB per instance. Compilers size a module's table to
// its functions (a Go guest's: about 6,300), far below this (2 MiB).
const maxTableEntries = 1 << 18

// boundTables rewrites the table section so that every table has a
// maximum of at most maxTableEntries (as memory_limit_mb lowers a memory's
// maximum), and refuses a table whose minimum is larger.
func boundTables(body []byte) ([]byte, error) {
	s := &reader{b: body}
	n := s.u32()
	out := binary.AppendUvarint(nil, uint64(n))
	for ; n > 0 && s.err == nil; n-- {
		ref := s.byte()
		flags := s.byte()
		lo, hi := s.u32(), uint32(maxTableEntries)
		switch flags {
		case 0:
		case 1:
			hi = min(s.u32(), maxTableEntries)
		default: // shared or 64-bit tables: features wazero does not enable
			s.fail("unknown table limits")
		}
		if lo > maxTableEntries {
			return nil, fmt.Errorf("a table of %d entries is over the host's limit of %d", lo, maxTableEntries)
		}
		out = append(out, ref, 0x01)
		out = binary.AppendUvarint(binary.AppendUvarint(out, uint64(lo)), uint64(max(hi, lo)))
	}
	if s.err == nil && len(s.b) > 0 {
		s.fail("bytes after the tables")
	}
	return out, s.err
}

// mayCall reports whether code (a function's instructions) may contain a
// call: it looks for the opcodes of call, call_indirect, the tail calls and
// call_ref (0x10-0x15) anywhere, immediates included, so it errs towards
// yes.
func mayCall(code []byte) bool { return bytes.ContainsAny(code, "\x10\x11\x12\x13\x14\x15") }

// wrapper is the body of a function that spends weight of the halt
// budget (the global after the peak, haltCheck), checks and counts cost
// against the global (and its peak, the next global), then calls target
// with its np params.
func wrapper(global, cost, np, target uint32, weight int) []byte {
	g := binary.AppendUvarint(nil, uint64(global))
	p := binary.AppendUvarint(nil, uint64(global+1))
	c := appendSLEB(nil, int64(cost))
	w := haltCheck([]byte{0x00}, global+2, weight) // no locals
	// if global > stackBudget-cost { global = depthExceeded; unreachable }
	w = append(append(w, 0x23), g...)
	w = append(appendSLEB(append(w, 0x41), int64(stackBudget-cost)), 0x4b, 0x04, 0x40)
	w = append(appendSLEB(append(w, 0x41), -1), 0x24)
	w = append(append(w, g...), 0x00, 0x0b)
	// global += cost
	w = append(append(w, 0x23), g...)
	w = append(append(append(w, 0x41), c...), 0x6a, 0x24)
	w = append(w, g...)
	// if global > peak { peak = global }
	w = append(append(append(append(w, 0x23), g...), 0x23), p...)
	w = append(append(append(w, 0x4b, 0x04, 0x40, 0x23), g...), 0x24)
	w = append(append(w, p...), 0x0b)
	for k := range np {
		w = binary.AppendUvarint(append(w, 0x20), uint64(k))
	}
	w = binary.AppendUvarint(append(w, 0x10), uint64(target))
	// global -= cost; the results stay on the operand stack below.
	w = append(append(w, 0x23), g...)
	w = append(append(append(w, 0x41), c...), 0x6b, 0x24)
	w = append(w, g...)
	return append(w, 0x0b)
}

// appendSLEB appends v in signed LEB128 (i32.const's immediate; Go's
// varint is zigzag-encoded instead).
func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// appendVec returns a vector of count elements: rest (the existing ones,
// after their count) and then extra.
func appendVec(rest []byte, count uint32, extra ...byte) []byte {
	out := binary.AppendUvarint(nil, uint64(count))
	out = append(out, rest...)
	return append(out, extra...)
}

// find returns the index of the section of id, or -1.
func find(secs []section, id byte) int {
	for i, s := range secs {
		if s.id == id {
			return i
		}
	}
	return -1
}

// insertSection adds a section of id where the binary format's order
// puts it.
func insertSection(secs []section, id byte, body []byte) []section {
	at := len(secs)
	for i, s := range secs {
		if s.id != 0 && sectionRank[s.id] > sectionRank[id] {
			at = i
			break
		}
	}
	out := append([]section(nil), secs[:at]...)
	out = append(out, section{id, body})
	return append(out, secs[at:]...)
}
