package plugin

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/tetratelabs/wazero/api"

	"github.com/whisperer/whisperer/sdk/abi"
)

// callState is what one call (or one instantiation) of a guest logged: the
// log import, stdout and stderr share one byte budget so a chatty or hostile
// guest cannot flood the server's log.
type callState struct {
	logger  *slog.Logger
	budget  int
	dropped int
	// lastErr is the last error-level log message: the guest's reason,
	// attached to the error of a failed call.
	lastErr string
	// firstStderr is the first stderr line, where Go runtime panics start.
	firstStderr string
}

func newCallState(logger *slog.Logger) *callState {
	return &callState{logger: logger, budget: abi.MaxLogBytesPerCall}
}

// reset readies st for the next call of its instance.
func (st *callState) reset() {
	st.budget, st.dropped, st.lastErr, st.firstStderr = abi.MaxLogBytesPerCall, 0, "", ""
}

type stateKey struct{}

// callCtx is the context a call of an instance runs with: the caller's,
// whose values the host functions see, and the instance's call state under
// stateKey. It lives in the instance, set for each call, so that a call
// allocates no context (context.WithValue did, on every call). It must
// not outlive the call: the next one sets it again.
type callCtx struct {
	context.Context
	st *callState
}

func (c *callCtx) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return c.st
	}
	return c.Context.Value(key)
}

// emit logs one guest message if the budget allows.
func (st *callState) emit(ctx context.Context, level slog.Level, source string, msg []byte) {
	if len(msg) > st.budget {
		st.dropped += len(msg)
		return
	}
	st.budget -= len(msg)
	if len(msg) > abi.MaxLogMessageBytes {
		msg = append(msg[:abi.MaxLogMessageBytes:abi.MaxLogMessageBytes], "…"...)
	}
	st.logger.Log(ctx, level, string(msg), "source", source)
}

// finish reports what the budget dropped.
func (st *callState) finish(ctx context.Context) {
	if st.dropped > 0 {
		st.logger.Log(ctx, slog.LevelWarn, "plugin output over the per-call limit dropped",
			"dropped_bytes", st.dropped, "limit_bytes", abi.MaxLogBytesPerCall)
		st.dropped = 0
	}
}

var guestLevels = map[uint32]slog.Level{
	uint32(abi.LevelDebug): slog.LevelDebug,
	uint32(abi.LevelInfo):  slog.LevelInfo,
	uint32(abi.LevelWarn):  slog.LevelWarn,
	uint32(abi.LevelError): slog.LevelError,
}

// guestLevel maps an ABI log level to slog's; unknown levels are info.
func guestLevel(l uint32) slog.Level {
	level, ok := guestLevels[l]
	if !ok {
		return slog.LevelInfo
	}
	return level
}

// hostLogEnabled implements whisperer.log_enabled(level) -> i32: 1 when the
// plugin's logger emits that level now (asked on every call: a reload may
// change the level). Error level is always 1: the last error message of a
// failed call goes into the reported error even if the log drops it.
func hostLogEnabled(ctx context.Context, _ api.Module, stack []uint64) {
	level := guestLevel(uint32(stack[0]))
	stack[0] = 0
	st, _ := ctx.Value(stateKey{}).(*callState)
	if st == nil {
		return
	}
	if level >= slog.LevelError || st.logger.Enabled(ctx, level) {
		stack[0] = 1
	}
}

// hostLog implements whisperer.log(level, ptr, len).
func hostLog(ctx context.Context, m api.Module, stack []uint64) {
	st, _ := ctx.Value(stateKey{}).(*callState)
	if st == nil {
		return
	}
	level := guestLevel(uint32(stack[0]))
	ptr, n := uint32(stack[1]), uint32(stack[2])
	if int(n) > st.budget {
		st.dropped += int(n)
		return
	}
	cut := min(n, abi.MaxLogMessageBytes)
	b, ok := m.Memory().Read(ptr, cut)
	if !ok {
		st.emit(ctx, slog.LevelWarn, "log", []byte("whisperer.log called with a range outside memory"))
		return
	}
	msg := bytes.Clone(b)
	if level == slog.LevelError {
		st.lastErr = string(msg)
	}
	st.budget -= int(n - cut) // what was cut still counts
	st.emit(ctx, level, "log", msg)
}

// stream is a guest's stdout or stderr: complete lines become log records.
// It belongs to one instance, which runs one call at a time; the call sets
// st before it starts.
type stream struct {
	name  string
	level slog.Level
	st    *callState
	line  []byte
}

func (s *stream) Write(p []byte) (int, error) {
	st := s.st
	if st == nil {
		return len(p), nil
	}
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := max(0, abi.MaxLogMessageBytes-len(s.line))
			s.line = append(s.line, p[:min(room, len(p))]...)
			st.dropped += len(p) - min(room, len(p))
			break
		}
		room := max(0, abi.MaxLogMessageBytes-len(s.line))
		s.line = append(s.line, p[:min(room, i)]...)
		st.dropped += i - min(room, i)
		s.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (s *stream) flush() {
	if s.st == nil || len(s.line) == 0 {
		s.line = s.line[:0]
		return
	}
	if s.name == "stderr" && s.st.firstStderr == "" {
		s.st.firstStderr = string(s.line)
	}
	s.st.emit(context.Background(), s.level, s.name, bytes.Clone(s.line))
	s.line = s.line[:0]
}
