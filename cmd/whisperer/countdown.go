package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/app"
)

func countdownPreviewFlags(fs *pflag.FlagSet) {
	fs.String("choice", "", "countdown key, built-in (fixed, linear, exponential, random) or a plugin's (required)")
	fs.String("kwargs", "{}", "the countdown's kwargs as a JSON object")
	fs.Int("retries", 0, "attempts in a series before the event is given up, 1 to 1000 (default delivery.max_retries)")
	jsonFlag(fs)
}

type scheduleRow struct {
	Attempt     int     `json:"attempt"`
	WaitSeconds float64 `json:"wait_seconds"`
	AtSeconds   float64 `json:"at_seconds"`
}

// countdownPreview prints when each attempt of a series happens: the first
// at once, attempt n+2 countdown(n) after attempt n+1, as the dispatcher
// schedules them, until the series is given up.
func countdownPreview(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	choice, _ := fs.GetString("choice")
	kwargs, _ := fs.GetString("kwargs")
	retries, _ := fs.GetInt("retries")
	if choice == "" {
		return usageErr(fs, "--choice is required")
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(kwargs), &obj); err != nil || obj == nil {
		return usageErr(fs, "--kwargs must be a JSON object, like '{\"base\": 2}', got %q", kwargs)
	}
	// 0 is not "the default": a series always has its first attempt.
	if fs.Changed("retries") && (retries < 1 || retries > 1000) {
		return usageErr(fs, "--retries is the number of attempts in a series, the first included: it must be between 1 and 1000, got %d (leave it out for delivery.max_retries)", retries)
	}
	cfg, err := app.LoadConfigEnv(e.environ, e.stderr, fs, flagKeys)
	if err != nil {
		return err
	}
	if !fs.Changed("retries") {
		retries = cfg.Delivery.MaxRetries
	}
	sched, err := app.PreviewCountdown(ctx, cfg, choice, json.RawMessage(kwargs), retries, e.stderr)
	if err != nil {
		return err
	}
	rows := []scheduleRow{{Attempt: 1}}
	var at time.Duration
	for n, w := range sched.Waits {
		at = satAdd(at, w) // a huge delivery.max_retries must not wrap around
		rows = append(rows, scheduleRow{Attempt: n + 2, WaitSeconds: w.Seconds(), AtSeconds: at.Seconds()})
	}
	if wantJSON(fs) {
		return printJSON(e.stdout, map[string]any{"choice": sched.Choice, "kwargs": sched.Kwargs, "schedule": rows, "given_up_after_seconds": at.Seconds()})
	}
	fmt.Fprintf(e.stdout, "%s %s, %d attempts:\n", sched.Choice, sched.Kwargs, retries)
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "ATTEMPT\tWAIT\tAT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", r.Attempt, human(secs(r.WaitSeconds)), human(secs(r.AtSeconds)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "given up after attempt %d fails, %s after the first\n", retries, human(at))
	return nil
}

func satAdd(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
