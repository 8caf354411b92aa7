package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/app"
)

// Helpers shared by the operator verbs: tables for people, JSON for
// scripts, and usage errors that exit 2.

func jsonFlag(fs *pflag.FlagSet) {
	fs.Bool("json", false, "print JSON instead of a table")
}

func wantJSON(fs *pflag.FlagSet) bool {
	j, _ := fs.GetBool("json")
	return j
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printList prints a listing verb's items: JSON with --json, else a table
// of header (tab-separated) and one row per item, then count (when not
// empty) on stderr, where it does not mix with the table a script reads.
func printList[T any](e env, fs *pflag.FlagSet, items []T, header string, row func(T) string, count string) error {
	if wantJSON(fs) {
		return printJSON(e.stdout, items)
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if count != "" {
		fmt.Fprintln(e.stderr, count)
	}
	return nil
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
}

// usageErr explains bad input on stderr and returns errUsage (exit 2).
func usageErr(fs *pflag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "whisperer: "+format+"\n", args...)
	fmt.Fprintf(fs.Output(), "Run with --help for usage.\n")
	return errUsage
}

// oneID reads the single numeric argument of a verb like "hooks show ID".
func oneID(fs *pflag.FlagSet, args []string, what string) (int64, error) {
	if len(args) != 1 {
		return 0, usageErr(fs, "expected one %s", what)
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, usageErr(fs, "%s must be a positive integer, got %q", what, args[0])
	}
	return id, nil
}

// withDB loads the configuration, opens (and migrates) the database, runs
// fn and closes it.
func withDB(ctx context.Context, e env, fs *pflag.FlagSet, fn func(*app.Admin) error) error {
	cfg, err := app.LoadConfigEnv(e.environ, e.stderr, fs, flagKeys)
	if err != nil {
		return err
	}
	adm, err := app.OpenAdmin(ctx, cfg, e.stderr)
	if err != nil {
		return err
	}
	defer adm.Close()
	return fn(adm)
}

// withReadDB is withDB for the verbs that only read: it neither creates
// the database (nor its key file) nor migrates it (see
// app.OpenAdminReadOnly).
func withReadDB(ctx context.Context, e env, fs *pflag.FlagSet, fn func(*app.Admin) error) error {
	cfg, err := app.LoadConfigEnv(e.environ, e.stderr, fs, flagKeys)
	if err != nil {
		return err
	}
	adm, err := app.OpenAdminReadOnly(ctx, cfg, e.stderr)
	if err != nil {
		return err
	}
	defer adm.Close()
	return fn(adm)
}

// excerpt is s on one line, cut to n runes.
func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func timeCell(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// human prints d the way people read a schedule: 1d2h, 3m4s, 250ms.
func human(d time.Duration) string {
	if d < time.Second {
		return d.String()
	}
	d = d.Round(time.Second)
	var b strings.Builder
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			d -= n * u.d
		}
	}
	return b.String()
}
