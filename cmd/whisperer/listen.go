package main

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/cmd/whisperer/internal/listen"
)

func listenFlags(fs *pflag.FlagSet) {
	fs.String("addr", "127.0.0.1:9000", "address to listen on")
	fs.String("secret", "", "the hook's secret_key, to verify both signatures with")
	fs.Float64("fail-rate", 0, "share of requests (0 to 1) to answer 500 on purpose, to watch retries")
}

// listenVerb runs a local receiver until SIGINT or SIGTERM (ctx) and then
// says how many deliveries it received.
func listenVerb(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	addr, _ := fs.GetString("addr")
	secret, _ := fs.GetString("secret")
	rate, _ := fs.GetFloat64("fail-rate")
	r, err := listen.New(listen.Config{Secret: secret, FailRate: rate}, e.stdout)
	if err != nil {
		return fmt.Errorf("--fail-rate: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (--addr): %w", addr, err)
	}
	checks := "signatures are not checked (no --secret)"
	if secret != "" {
		checks = "verifying signatures with --secret"
	}
	fmt.Fprintf(e.stderr, "listening on http://%s/ (%s; failing %.0f%% of requests on purpose); Ctrl-C stops\n",
		ln.Addr(), checks, rate*100)
	err = listen.Serve(ctx, ln, r)
	got, failed := r.Counts()
	fmt.Fprintf(e.stderr, "received %d deliveries, %d failed on purpose\n", got, failed)
	return err
}
