// Command whisperer is the Whisperer webhook server and its operator CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/whisperer/whisperer/core/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "whisperer:", app.ErrorText(err))
		}
		os.Exit(exitCode(err))
	}
}

// errUsage marks errors already explained by a usage message.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// env is what every verb gets: the environment ("NAME=value", as
// os.Environ gives it) and the output streams.
type env struct {
	environ        []string
	stdout, stderr io.Writer
}
