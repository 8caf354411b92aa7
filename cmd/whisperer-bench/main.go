// Command whisperer-bench is Whisperer's load tool. It starts one or more
// `whisperer serve` processes on a fresh SQLite file or PostgreSQL database
// (or uses a running server), registers hooks to a built-in receiver on
// 127.0.0.1, publishes events through the HTTP API and reports publish
// rate, deliveries/s, publish→receipt latency, duplicates, losses (the
// receiver's uuid set against the database) and the server's CPU and
// memory. Fault options kill a node, restart PostgreSQL or make the
// receiver fail for a while, mid-run. --raw measures the machine's ceiling:
// the same client and receiver with no server in between; --floor its
// floor: a minimal relay with the server's guarantees in its place
// (relay.go), measured the same way.
//
// Every loop is bounded by a count and by --timeout; traffic goes only to
// 127.0.0.1. See docs/BENCHMARKS.md and docs/RELIABILITY.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	name, target       string
	backend            string
	pgBase             string
	bin                string
	serverURL, dbURL   string
	nodes              int
	events, hooks      int
	concurrency        int
	rate               float64
	timeout            time.Duration
	preload            int
	preloadAge         time.Duration
	jsonOut, raw       bool
	floor              bool
	env                multiFlag
	killAfter          int
	killOneAfter       int
	pgRestartAfter     int
	failFor            time.Duration
	failFirst          bool
	retrySeconds       int
	callback           string
	filtered           int
	filterPlugin       string
	filterKwargs       string
	transform          string
	transformKwargs    string
	down               time.Duration
	keep               bool
	warmup             int
	pgRestartCmd       string
	expectNoDuplicates bool
	profile            string
	serverPID          int
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	for _, drop := range dropAtExit {
		drop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "whisperer-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "report" {
		return report(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "floor-relay" { // started by --floor
		return relayMain(ctx, args[1:])
	}
	var o options
	fs := flag.NewFlagSet("whisperer-bench", flag.ContinueOnError)
	fs.StringVar(&o.name, "name", "", "scenario name shown in the report")
	fs.StringVar(&o.target, "target", "", "the target this scenario is measured against, shown in the report")
	fs.StringVar(&o.backend, "backend", "sqlite", "sqlite or postgres: the database of the servers this tool starts")
	fs.StringVar(&o.pgBase, "postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL server on which a fresh database is created (and dropped after)")
	fs.StringVar(&o.bin, "bin", "", "whisperer binary (default: go build ./cmd/whisperer into a temporary directory)")
	fs.StringVar(&o.serverURL, "server", "", "use this running server (http://127.0.0.1:PORT) instead of starting one; needs --database-url")
	fs.IntVar(&o.serverPID, "server-pid", 0, "the running server's process id, to report its CPU and RSS")
	fs.StringVar(&o.dbURL, "database-url", "", "the running server's database (for users create and the loss check)")
	fs.IntVar(&o.nodes, "nodes", 1, "server processes to start on the same database (postgres for more than one)")
	fs.IntVar(&o.events, "events", 20000, "events to publish")
	fs.IntVar(&o.hooks, "hooks", 1, "hooks subscribed to the event type: each event fans out to this many deliveries")
	fs.IntVar(&o.concurrency, "c", 32, "concurrent publishers")
	fs.Float64Var(&o.rate, "rate", 0, "publish at this many events/s in all (0: as fast as the publishers go)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on the run after this long")
	fs.IntVar(&o.preload, "preload", 0, "rows inserted in webhook_events before the run: half delivered, half due in a day")
	fs.DurationVar(&o.preloadAge, "preload-age", 0, "with --preload (PostgreSQL): preload delivered events this old instead, each with a message and an attempt, and after the run measure whisperer retention purge --days 1 deleting them, e.g. 1440h (the servers' own retention is off)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as one JSON object")
	fs.BoolVar(&o.raw, "raw", false, "raw ceiling: POST --events requests straight to the receiver, no server")
	fs.BoolVar(&o.floor, "floor", false, "the machine's floor: a minimal hand-written relay with Whisperer's guarantees instead of the server, "+
		"measured the same way (--backend postgres, sqlite, or none: HTTP in and out only)")
	fs.Var(&o.env, "env", "KEY=VALUE for the servers' environment (repeatable), e.g. WHISPERER_DELIVERY_WORKERS=128")
	fs.IntVar(&o.killAfter, "kill-after", 0, "SIGKILL node 0 after this many deliveries, then restart it")
	fs.IntVar(&o.killOneAfter, "kill-one-after", 0, "SIGKILL the last node after this many deliveries; it stays down")
	fs.IntVar(&o.pgRestartAfter, "pg-restart-after", 0, "restart PostgreSQL (--pg-restart-cmd) after this many deliveries")
	fs.StringVar(&o.pgRestartCmd, "pg-restart-cmd", "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart", "shell command that restarts PostgreSQL")
	fs.DurationVar(&o.failFor, "fail-for", 0, "the receiver answers 500 for this long from the first publish, then 204")
	fs.BoolVar(&o.failFirst, "fail-first", false, "the receiver answers 500 to each event's first request (retry lateness: each retry is reported against its countdown)")
	fs.IntVar(&o.retrySeconds, "retry-seconds", 1, "the hooks' fixed retry countdown, in seconds")
	fs.IntVar(&o.filtered, "filtered", 0, "of the --hooks hooks, this many have a filter that refuses every event (fan-out writes no row for them); "+
		"declarative ({\"event_type\": \"none\"}) unless --filter-plugin")
	fs.StringVar(&o.filterPlugin, "filter-plugin", "", "the --filtered hooks' filter is this plugin filter, {\"plugin\": NAME, \"kwargs\": --filter-kwargs}; it must refuse the bench's events")
	fs.StringVar(&o.filterKwargs, "filter-kwargs", "{}", "kwargs of --filter-plugin (JSON object)")
	fs.StringVar(&o.transform, "transform", "", "every hook's transform, {\"name\": NAME, \"kwargs\": --transform-kwargs} (point WHISPERER_PLUGINS_DIR at its plugin with --env)")
	fs.StringVar(&o.transformKwargs, "transform-kwargs", "{}", "kwargs of --transform (JSON object)")
	fs.StringVar(&o.callback, "callback", "", "the hooks' post-delivery callback, e.g. foo.bar.app.callback (point WHISPERER_PLUGINS_DIR at its plugin with --env)")
	fs.DurationVar(&o.down, "down", time.Second, "how long a killed node stays down before its restart")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory and database")
	fs.IntVar(&o.warmup, "warmup", 200, "events published and delivered before the measured run (connections, caches)")
	fs.StringVar(&o.profile, "profile", "", "run the server inside this process and write its CPU profile (pprof) to this file, and its allocations' to FILE.allocs")
	fs.BoolVar(&o.expectNoDuplicates, "expect-no-duplicates", false, "exit non-zero when any event was received twice")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: whisperer-bench [flags]\n       whisperer-bench report RESULTS.jsonl...\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if o.filtered < 0 || o.filtered >= o.hooks {
		return errors.New("--filtered must be at least 0 and less than --hooks")
	}
	for _, kw := range []string{o.filterKwargs, o.transformKwargs} {
		if !json.Valid([]byte(kw)) || !strings.HasPrefix(strings.TrimSpace(kw), "{") {
			return fmt.Errorf("--filter-kwargs and --transform-kwargs must be JSON objects, got %s", kw)
		}
	}
	if o.events <= 0 || o.hooks <= 0 || o.concurrency <= 0 || o.nodes <= 0 {
		return errors.New("--events, --hooks, -c and --nodes must be positive")
	}
	if o.floor && (o.hooks != 1 || o.nodes != 1 || o.preload > 0 || o.profile != "" || o.serverURL != "" || o.transform != "" ||
		o.callback != "" || o.pgRestartAfter > 0) {
		return errors.New("--floor is one relay with one hook: no --hooks, --nodes, --preload, --profile, --server, --transform, --callback or --pg-restart-after")
	}
	if o.preloadAge != 0 {
		if o.preload <= 0 || o.preloadAge < 48*time.Hour || o.backend != "postgres" {
			return errors.New("--preload-age needs --preload, --backend postgres and an age of at least 48h (the purge deletes what is older than a day)")
		}
		// The servers' own retention would race the measured purge.
		o.env = append(o.env, "WHISPERER_RETENTION_DAYS=0")
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var res *result
	var err error
	if o.raw {
		res, err = runRaw(ctx, o)
	} else {
		res, err = runServer(ctx, o)
	}
	if res != nil {
		if o.jsonOut {
			b, _ := json.Marshal(res)
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			res.table(stdout)
		}
	}
	if err == nil && res != nil && res.Lost > 0 {
		err = fmt.Errorf("%d events lost", res.Lost)
	}
	if err == nil && res != nil && o.expectNoDuplicates && res.Duplicates > 0 {
		err = fmt.Errorf("%d duplicate deliveries", res.Duplicates)
	}
	return err
}
