package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/app"
)

func eventsTable(e env, evs []app.EventInfo) error {
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "UUID\tHOOK\tEVENT TYPE\tSTATE\tATTEMPTS\tLAST STATUS\tCREATED\tNEXT ATTEMPT")
	for _, ev := range evs {
		status, next := "-", "-"
		if ev.LastStatus != nil {
			status = fmt.Sprint(*ev.LastStatus)
		} else if ev.Attempts > 0 {
			status = "no response"
		}
		if ev.NextAttemptAt != nil {
			next = timeCell(*ev.NextAttemptAt)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", ev.UUID, ev.WebhookID, ev.EventType, ev.Status(),
			ev.Attempts, status, timeCell(ev.CreatedAt), next)
	}
	return tw.Flush()
}

const sinceHelp = "RFC 3339 time, YYYY-MM-DD, or a duration ago like 24h"

func eventsListFlags(fs *pflag.FlagSet) {
	fs.Bool("failed", false, "only events given up or waiting for a retry after a failure")
	fs.String("since", "", "only events created since: "+sinceHelp)
	fs.Int64("webhook", 0, "only this hook's events")
	fs.Int("limit", 50, "at most this many events, newest first (1 to 1000)")
	jsonFlag(fs)
}

func eventsList(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	failed, _ := fs.GetBool("failed")
	hook, _ := fs.GetInt64("webhook")
	limit, _ := fs.GetInt("limit")
	if limit < 1 || limit > 1000 {
		return usageErr(fs, "--limit must be between 1 and 1000, got %d", limit)
	}
	q := app.EventQuery{Failed: failed, WebhookID: hook, Limit: limit}
	if s, _ := fs.GetString("since"); s != "" {
		t, err := parseWhen(s, time.Now())
		if err != nil {
			return usageErr(fs, "--since: %v", err)
		}
		q.Since = t
	}
	return withReadDB(ctx, e, fs, func(adm *app.Admin) error {
		out, err := adm.Events(ctx, q)
		if err != nil {
			return err
		}
		if wantJSON(fs) {
			return printJSON(e.stdout, out)
		}
		if err := eventsTable(e, out); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "%d event(s)\n", len(out))
		return nil
	})
}

func eventsShow(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usageErr(fs, "expected one event UUID")
	}
	return withReadDB(ctx, e, fs, func(adm *app.Admin) error {
		ev, err := adm.Event(ctx, args[0])
		if err != nil {
			return err
		}
		if wantJSON(fs) {
			return printJSON(e.stdout, ev)
		}
		tw := newTable(e.stdout)
		state := ev.Status()
		if ev.NextAttemptAt != nil {
			state += ", next attempt " + timeCell(*ev.NextAttemptAt)
		}
		for _, kv := range [][2]string{
			{"uuid", ev.UUID},
			{"hook", fmt.Sprintf("%d → %s", ev.WebhookID, ev.TargetURL)},
			{"event type", ev.EventType},
			{"state", state},
			{"attempts", fmt.Sprint(ev.Attempts)},
			{"created", timeCell(ev.CreatedAt)},
			{"payload", excerpt(string(ev.Payload), 200)},
		} {
			fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(ev.AttemptLog) == 0 {
			fmt.Fprintln(e.stdout, "\nno attempts yet")
			return nil
		}
		fmt.Fprintln(e.stdout, "\nattempts:")
		tw = newTable(e.stdout)
		fmt.Fprintln(tw, "#\tTIME\tDURATION\tSTATUS\tERROR\tBODY")
		for _, a := range ev.AttemptLog {
			status := "-"
			if a.Status != 0 {
				status = fmt.Sprint(a.Status)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", a.Number, timeCell(a.At),
				time.Duration(a.DurationMS*float64(time.Millisecond)).Round(time.Millisecond/10),
				status, or(excerpt(a.Error, 50), "-"), or(excerpt(a.Body, 60), "-"))
		}
		return tw.Flush()
	})
}

func eventsRedeliverFlags(fs *pflag.FlagSet) {
	fs.Bool("force", false, "with UUID: deliver again even if it was delivered")
	fs.String("since", "", "every failed event created since: "+sinceHelp)
	fs.String("until", "", "with --since: end of the range (default now)")
	fs.Int64("webhook", 0, "with --since: only this hook's events")
}

// eventsRedeliver redelivers one event (UUID) or, with --since, every
// failed event in a range, batch by batch with progress on stderr.
func eventsRedeliver(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	sinceS, _ := fs.GetString("since")
	switch {
	case len(args) == 1 && sinceS == "":
		return redeliverOne(ctx, e, fs, args[0])
	case len(args) == 0 && sinceS != "":
		return redeliverSince(ctx, e, fs, sinceS)
	}
	return usageErr(fs, "give either one event UUID or --since")
}

func redeliverOne(ctx context.Context, e env, fs *pflag.FlagSet, uuid string) error {
	if fs.Changed("until") || fs.Changed("webhook") {
		return usageErr(fs, "--until and --webhook go with --since, not with a UUID")
	}
	force, _ := fs.GetBool("force")
	return withDB(ctx, e, fs, func(adm *app.Admin) error {
		ev, err := adm.Event(ctx, uuid)
		if err != nil {
			return err
		}
		if ev.Delivered() && !force {
			return fmt.Errorf("event %s is already delivered; pass --force to deliver it again", ev.UUID)
		}
		if err := adm.Redeliver(ctx, ev.UUID, force); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "event %s scheduled for delivery now; a running server picks it up\n", ev.UUID)
		return nil
	})
}

func redeliverSince(ctx context.Context, e env, fs *pflag.FlagSet, sinceS string) error {
	if fs.Changed("force") {
		return usageErr(fs, "--force goes with a UUID: --since redelivers failed events only")
	}
	untilS, _ := fs.GetString("until")
	hook, _ := fs.GetInt64("webhook")
	now := time.Now()
	since, err := parseWhen(sinceS, now)
	if err != nil {
		return usageErr(fs, "--since: %v", err)
	}
	var until time.Time
	if untilS != "" {
		if until, err = parseWhen(untilS, now); err != nil {
			return usageErr(fs, "--until: %v", err)
		}
		// A duration counts back from now: --until 2h is before --since 1h.
		if !until.After(since) {
			return usageErr(fs, "--until (%s) must be after --since (%s): the range would be empty",
				until.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
		}
	}
	return withDB(ctx, e, fs, func(adm *app.Admin) error {
		done, err := adm.RedeliverFailed(ctx, since, until, hook, func(done, total int64) {
			fmt.Fprintf(e.stderr, "redelivered %d/%d\n", done, total)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%d event(s) scheduled for delivery now; a running server picks them up\n", done)
		return nil
	})
}
