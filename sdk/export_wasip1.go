//go:build wasip1

package sdk

import (
	"runtime"
	"unsafe"
)

// The ABI v1 exports (sdk/ABI.md). Each ends with yield.

//go:wasmimport whisperer log
func wasmLog(level int32, ptr unsafe.Pointer, n int32)

//go:wasmimport whisperer log_enabled
func wasmLogEnabled(level int32) int32

func hostLogEnabled(level Level) bool { return wasmLogEnabled(int32(level)) != 0 }

func hostLog(level Level, msg string) {
	if msg == "" {
		return
	}
	wasmLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

var calls uint32

// yield lets other goroutines run: an export returns to the host without
// ever blocking, so without it they never would. runtime.Gosched costs
// several microseconds under the host's deadline checks (ABI.md §8), so
// while no goroutine but the one running the export exists (NumGoroutine
// leaves out the runtime's own) it runs every 16th call only: the garbage
// collector keeps up meanwhile through the allocations' assists
// (core/internal/plugin's TestGoGuestMemoryStaysBounded). Any other goroutine, the
// plugin's or a library's, gets a yield after every call.
func yield() {
	calls++
	if calls%16 == 0 || runtime.NumGoroutine() > 1 {
		runtime.Gosched()
	}
}

var (
	// inbuf is the host's input buffer: it stays referenced (so the GC
	// keeps it) until the host asks for a bigger one.
	inbuf []byte
	// outbuf keeps the last output alive until the next call.
	outbuf []byte
	// resultBuf is the transform result documents' buffer, reused: the
	// host copies an output before the next call.
	resultBuf []byte
)

// maxResultBuf keeps a rare big result from pinning its buffer.
const maxResultBuf = 64 << 10

func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// input returns the n input bytes the host wrote at ptr, which must be the
// current input buffer.
func input(ptr, n int32) ([]byte, bool) {
	if n == 0 {
		return nil, true
	}
	if n < 0 || len(inbuf) < int(n) || uint32(ptr) != addr(inbuf) {
		Logf(LevelError, "input at %d (%d bytes) is not the buffer whisperer_alloc returned", ptr, n)
		return nil, false
	}
	// A copy: the host overwrites the buffer on the next call, and a plugin
	// may keep what it was given.
	return append([]byte(nil), inbuf[:n]...), true
}

// pack keeps b alive and returns it as ptr<<32|len.
func pack(b []byte) int64 {
	outbuf = b
	if len(b) == 0 {
		return 0
	}
	return int64(uint64(addr(b))<<32 | uint64(len(b)))
}

func guard(what string) {
	if r := recover(); r != nil {
		recovered(what, r)
	}
}

//go:wasmexport whisperer_abi_v1
func wasmABIv1() {}

//go:wasmexport whisperer_alloc
func wasmAlloc(size int32) (ptr int32) {
	defer yield()
	defer guard("whisperer_alloc")
	if size < 0 {
		return 0
	}
	inbuf = make([]byte, max(size, 1))
	return int32(addr(inbuf))
}

//go:wasmexport whisperer_manifest
func wasmManifest() (packed int64) {
	defer yield()
	defer guard("whisperer_manifest")
	return pack(manifest())
}

//go:wasmexport whisperer_countdown
func wasmCountdown(idx, retryCount, ptr, n int32) (secs int64) {
	secs = -1
	defer yield()
	defer guard("whisperer_countdown")
	kw, ok := input(ptr, n)
	if !ok {
		return -1
	}
	return countdownAt(int(idx), int(retryCount), kw)
}

//go:wasmexport whisperer_validate
func wasmValidate(idx, ptr, n int32) (res int64) {
	res = -1
	defer yield()
	defer guard("whisperer_validate")
	kw, ok := input(ptr, n)
	if !ok {
		return -1
	}
	doc, code := validateAt(int(idx), kw)
	if code != 0 {
		return code
	}
	return pack(doc)
}

//go:wasmexport whisperer_callback_record
func wasmCallbackRecord(idx, ptr, docLen, recLen int32) (code int32) {
	code = 1
	defer yield()
	defer guard("whisperer_callback_record")
	if docLen < 0 || recLen < 0 || int64(docLen)+int64(recLen) > int64(len(inbuf)) ||
		(docLen+recLen > 0 && uint32(ptr) != addr(inbuf)) {
		Logf(LevelError, "input at %d (%d+%d bytes) is not the buffer whisperer_alloc returned", ptr, docLen, recLen)
		return 1
	}
	// No copy here: callbackRecordAt copies what the callback may keep.
	return callbackRecordAt(int(idx), inbuf[:docLen+recLen], int(docLen))
}

//go:wasmexport whisperer_callback
func wasmCallback(idx, ptr, n int32) (code int32) {
	code = 1
	defer yield()
	defer guard("whisperer_callback")
	doc, ok := input(ptr, n)
	if !ok {
		return 1
	}
	return callbackAt(int(idx), doc)
}

// inputAt returns the n bytes at ptr of the current input buffer, without
// a copy: the filter and transform dispatch document what aliases it.
func inputAt(ptr int32, n int64) ([]byte, bool) {
	if n < 0 || n > int64(len(inbuf)) || (n > 0 && uint32(ptr) != addr(inbuf)) {
		Logf(LevelError, "input at %d (%d bytes) is not the buffer whisperer_alloc returned", ptr, n)
		return nil, false
	}
	return inbuf[:n], true
}

//go:wasmexport whisperer_filter
func wasmFilter(idx, ptr, kwLen, evLen, ixLen int32) (code int32) {
	code = -1
	defer yield()
	defer guard("whisperer_filter")
	if kwLen < 0 || evLen < 0 || ixLen < 0 {
		return -1
	}
	in, ok := inputAt(ptr, int64(kwLen)+int64(evLen)+int64(ixLen))
	if !ok {
		return -1
	}
	return filterAt(int(idx), in, int(kwLen), int(evLen))
}

//go:wasmexport whisperer_filter_validate
func wasmFilterValidate(idx, ptr, n int32) (res int64) {
	res = -1
	defer yield()
	defer guard("whisperer_filter_validate")
	kw, ok := input(ptr, n)
	if !ok {
		return -1
	}
	doc, code := filterValidateAt(int(idx), kw)
	if code != 0 {
		return code
	}
	return pack(doc)
}

//go:wasmexport whisperer_transform
func wasmTransform(idx, ptr, kwLen, docLen, bodyLen, ixLen int32) (res int64) {
	res = -1
	defer yield()
	defer guard("whisperer_transform")
	if kwLen < 0 || docLen < 0 || bodyLen < 0 || ixLen < 0 {
		return -1
	}
	in, ok := inputAt(ptr, int64(kwLen)+int64(docLen)+int64(bodyLen)+int64(ixLen))
	if !ok {
		return -1
	}
	return transformResult(transformAt(int(idx), in, int(kwLen), int(docLen), int(bodyLen), 0, resultBuf))
}

//go:wasmexport whisperer_transform_record
func wasmTransformRecord(idx, ptr, kwLen, docLen, bodyLen, ixLen, recLen int32) (res int64) {
	res = -1
	defer yield()
	defer guard("whisperer_transform_record")
	if kwLen < 0 || docLen < 0 || bodyLen < 0 || ixLen < 0 || recLen < 0 {
		return -1
	}
	in, ok := inputAt(ptr, int64(kwLen)+int64(docLen)+int64(bodyLen)+int64(ixLen)+int64(recLen))
	if !ok {
		return -1
	}
	return transformResult(transformAt(int(idx), in, int(kwLen), int(docLen), int(bodyLen), int(recLen), resultBuf))
}

// transformResult packs a transform's result document, or logs its error.
func transformResult(doc []byte, err error) int64 {
	if err != nil {
		if err != errPanicked {
			Log(LevelError, err.Error())
		}
		return -1
	}
	if doc != nil && cap(doc) <= maxResultBuf { // nil (keep) would drop the buffer
		resultBuf = doc[:0]
	}
	return pack(doc)
}

//go:wasmexport whisperer_transform_validate
func wasmTransformValidate(idx, ptr, n int32) (res int64) {
	res = -1
	defer yield()
	defer guard("whisperer_transform_validate")
	kw, ok := input(ptr, n)
	if !ok {
		return -1
	}
	doc, code := transformValidateAt(int(idx), kw)
	if code != 0 {
		return code
	}
	return pack(doc)
}
