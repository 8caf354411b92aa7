//go:build !wasip1

package sdk

import (
	"fmt"
	"os"
)

var levelNames = map[Level]string{LevelDebug: "DEBUG", LevelInfo: "INFO", LevelWarn: "WARN", LevelError: "ERROR"}

func hostLog(level Level, msg string) {
	fmt.Fprintf(os.Stderr, "plugin %s: %s\n", levelNames[level], msg)
}

func hostLogEnabled(Level) bool { return true }
