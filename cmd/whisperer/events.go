package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/config"
	"github.com/whisperer/whisperer/core/store"
	"github.com/whisperer/whisperer/core/webhook"
)

// eventJSON is a webhook event as the CLI prints it.
type eventJSON struct {
	UUID          string          `json:"uuid"`
	WebhookID     int64           `json:"webhook_id"`
	TargetURL     string          `json:"target_url"`
	EventType     string          `json:"event_type"`
	State         webhook.State   `json:"state"`
	Failed        bool            `json:"failed"`
	Attempts      int             `json:"attempts"`
	LastStatus    *int            `json:"last_status"`
	CreatedAt     time.Time       `json:"created_at"`
	NextAttemptAt *time.Time      `json:"next_attempt_at,omitempty"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	AttemptLog    []attemptJSON   `json:"attempt_log,omitempty"`
}

// attemptJSON is one attempt, numbered from the first.
type attemptJSON struct {
	Number     int       `json:"number"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms"`
	Status     int       `json:"status"`
	Error      string    `json:"error,omitempty"`
	Body       string    `json:"body"`
}

func toEventJSON(j webhook.Job, full bool) eventJSON {
	ev := j.Event
	out := eventJSON{
		UUID: ev.UUID, WebhookID: ev.WebhookID, TargetURL: webhook.RedactURL(j.Webhook.TargetURL), EventType: ev.EventType,
		State: ev.State, Attempts: ev.RetryCount, LastStatus: ev.ResponseHTTPStatus, CreatedAt: ev.CreatedAt,
		Failed: ev.State == webhook.StateGivenUp || (ev.State == webhook.StatePending && ev.RetryCount > ev.RetryBase),
	}
	if ev.State == webhook.StatePending {
		next := ev.NextAttemptAt
		out.NextAttemptAt = &next
	}
	if full {
		out.Payload = ev.Payload
		// The store gives attempts newest first; a log reads oldest first.
		for i, a := range slices.Backward(ev.Attempts) {
			out.AttemptLog = append(out.AttemptLog, attemptJSON{
				Number: len(ev.Attempts) - i, At: a.AttemptedAt, Status: a.Status, Error: a.Error, Body: a.Body,
				DurationMS: float64(a.Duration.Microseconds()) / 1000,
			})
		}
	}
	return out
}

func stateCell(ev eventJSON) string {
	if ev.State == webhook.StatePending && ev.Failed {
		return "retrying"
	}
	return string(ev.State)
}

func eventsTable(e env, evs []eventJSON) error {
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
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", ev.UUID, ev.WebhookID, ev.EventType, stateCell(ev),
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
	var f webhook.EventFilter
	f.WebhookID = hook
	if s, _ := fs.GetString("since"); s != "" {
		t, err := parseWhen(s, time.Now())
		if err != nil {
			return usageErr(fs, "--since: %v", err)
		}
		f.CreatedSince = t
	}
	return withReadDB(ctx, e, fs, func(s *store.Store, _ *config.Config) error {
		var jobs []webhook.Job
		var err error
		if failed {
			jobs, err = s.FailedEvents(ctx, f, limit)
		} else {
			jobs, _, err = s.ListEvents(ctx, webhook.Scope{All: true}, f, webhook.Page{Limit: limit})
		}
		if err != nil {
			return err
		}
		out := make([]eventJSON, 0, len(jobs))
		for _, j := range jobs {
			out = append(out, toEventJSON(j, false))
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

func findEvent(ctx context.Context, s *store.Store, uuid string) (webhook.Job, error) {
	j, err := s.Event(ctx, webhook.Scope{All: true}, uuid)
	if errors.Is(err, webhook.ErrNotFound) {
		return j, fmt.Errorf("no event with uuid %s", uuid)
	}
	return j, err
}

func eventsShow(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usageErr(fs, "expected one event UUID")
	}
	return withReadDB(ctx, e, fs, func(s *store.Store, _ *config.Config) error {
		j, err := findEvent(ctx, s, args[0])
		if err != nil {
			return err
		}
		ev := toEventJSON(j, true)
		if wantJSON(fs) {
			return printJSON(e.stdout, ev)
		}
		tw := newTable(e.stdout)
		state := stateCell(ev)
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
	return withDB(ctx, e, fs, func(s *store.Store) error {
		j, err := findEvent(ctx, s, uuid)
		if err != nil {
			return err
		}
		if j.Event.State == webhook.StateDelivered && !force {
			return fmt.Errorf("event %s is already delivered; pass --force to deliver it again", j.Event.UUID)
		}
		if _, err := s.Redeliver(ctx, webhook.Scope{All: true}, j.Event.UUID, force); err != nil {
			var conflict *webhook.ConflictError
			if errors.As(err, &conflict) {
				return errors.New(conflict.Detail)
			}
			return err
		}
		fmt.Fprintf(e.stdout, "event %s scheduled for delivery now; a running server picks it up\n", j.Event.UUID)
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
	}
	return withDB(ctx, e, fs, func(s *store.Store) error {
		f := webhook.RedeliverFilter{Since: since, Until: until, WebhookID: hook}
		sc := webhook.Scope{All: true}
		total, err := s.CountFailed(ctx, sc, f)
		if err != nil {
			return err
		}
		var done, after int64
		for {
			n, next, err := s.RedeliverFailedBatch(ctx, sc, f, after, 500)
			if err != nil {
				return fmt.Errorf("after %d of %d: %w", done, total, err)
			}
			done += n
			fmt.Fprintf(e.stderr, "redelivered %d/%d\n", done, total)
			if after = next; after == 0 {
				break
			}
		}
		fmt.Fprintf(e.stdout, "%d event(s) scheduled for delivery now; a running server picks them up\n", done)
		return nil
	})
}
