package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/whisperer/whisperer/core/app"
)

// startInProcess runs the server inside this process, so that --profile
// can take a CPU profile of it, and at the end the allocations' profile
// (PROFILE.allocs: every allocation since the process started, sampled).
// The profiles then also hold the publishers and the receiver (their own
// functions, easy to tell apart).
func startInProcess(ctx context.Context, env []string, profile string) (*node, func(), error) {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	cfg, err := app.LoadConfig("/dev/null", func(k string) string { return vars[k] }, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	logCfg := cfg.Log
	logCfg.Level, logCfg.Format = "warn", "text"
	a, err := app.New(ctx, cfg, app.NewLogger(logCfg, os.Stderr))
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	f, err := os.Create(profile)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		ln.Close()
		f.Close()
		return nil, nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &node{addr: ln.Addr().String(), done: make(chan struct{})}
	go func() { _ = a.Serve(sctx, ln); close(n.done) }()
	for range 100 {
		if resp, err := http.Get("http://" + n.addr + "/healthz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop := func() {
		pprof.StopCPUProfile()
		f.Close()
		if af, err := os.Create(profile + ".allocs"); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(af, 0)
			af.Close()
		}
		cancel()
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "in-process server did not stop")
		}
	}
	return n, stop, nil
}
