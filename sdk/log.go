package sdk

import (
	"fmt"

	"github.com/whisperer/whisperer/sdk/abi"
)

// Level is a log level of the host's structured log.
type Level int32

// Log levels, as abi.LevelDebug … abi.LevelError.
const (
	LevelDebug Level = Level(abi.LevelDebug)
	LevelInfo  Level = Level(abi.LevelInfo)
	LevelWarn  Level = Level(abi.LevelWarn)
	LevelError Level = Level(abi.LevelError)
)

// Log writes msg to the server's structured log, tagged with the plugin.
// When a call fails, the host adds the last error-level message of that call
// to the error it reports. Outside wasm it writes to standard error.
func Log(level Level, msg string) {
	if LogEnabled(level) {
		hostLog(level, msg)
	}
}

// Logf formats and logs like Log. It formats nothing when the host would
// drop the message (LogEnabled).
func Logf(level Level, format string, args ...any) {
	if LogEnabled(level) {
		hostLog(level, fmt.Sprintf(format, args...))
	}
}

// LogEnabled reports whether the host logs messages of level for this
// plugin now (the host import whisperer.log_enabled); use it to skip building
// an expensive message. It asks the host on every call, since the level can
// change while the plugin runs. Error level is always enabled. Outside wasm
// it is always true.
func LogEnabled(level Level) bool { return hostLogEnabled(level) }
