package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/app"
)

func hooksListFlags(fs *pflag.FlagSet) {
	fs.String("user", "", "only this user's hooks")
	fs.String("event-type", "", "only hooks of this event type")
	fs.Bool("inactive", false, "only deactivated hooks")
	jsonFlag(fs)
}

func hooksList(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	userName, _ := fs.GetString("user")
	eventType, _ := fs.GetString("event-type")
	inactive, _ := fs.GetBool("inactive")
	return withReadDB(ctx, e, fs, func(adm *app.Admin) error {
		out, err := adm.Hooks(ctx, app.HookQuery{User: userName, EventType: eventType, Inactive: inactive})
		if err != nil {
			return err
		}
		return printList(e, fs, out, "ID\tUSER\tEVENT TYPE\tTARGET URL\tACTIVE\tRETRY\tCREATED", func(h app.HookInfo) string {
			return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%s", h.ID, h.User, h.EventType, excerpt(h.TargetURL, 60),
				yesNo(h.IsActive), h.RetryCountdown.Choice+" "+string(h.RetryCountdown.Kwargs), timeCell(h.CreatedAt))
		}, fmt.Sprintf("%d hook(s)", len(out)))
	})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func hooksShow(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	id, err := oneID(fs, args, "hook ID")
	if err != nil {
		return err
	}
	return withReadDB(ctx, e, fs, func(adm *app.Admin) error {
		out, err := adm.Hook(ctx, id, 5)
		if err != nil {
			return err
		}
		if wantJSON(fs) {
			return printJSON(e.stdout, out)
		}
		tw := newTable(e.stdout)
		secret := "none"
		if out.HasSecret {
			secret = "set (not shown)"
		}
		for _, kv := range [][2]string{
			{"id", fmt.Sprint(out.ID)},
			{"user", fmt.Sprintf("%s (id %d)", out.User, out.UserID)},
			{"event type", out.EventType},
			{"target url", out.TargetURL},
			{"active", activeCell(out)},
			{"failing since", optTime(out.FailingSince, "no failure since the last success")},
			{"retry countdown", out.RetryCountdown.Choice + " " + string(out.RetryCountdown.Kwargs)},
			{"callback", or(out.Callback, "none")},
			{"secret key", secret},
			{"basic auth", yesNo(out.BasicAuth)},
			{"extra headers", or(fmt.Sprint(out.HeaderNames), "none")},
			{"created", timeCell(out.CreatedAt)},
			{"modified", timeCell(out.ModifiedAt)},
		} {
			fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(out.RecentEvents) == 0 {
			fmt.Fprintln(e.stdout, "\nno events yet")
			return nil
		}
		fmt.Fprintln(e.stdout, "\nrecent events:")
		return eventsTable(e, out.RecentEvents)
	})
}

// activeCell is "yes", or "no" with why and since when.
func activeCell(h app.HookInfo) string {
	if h.IsActive {
		return "yes"
	}
	s := "no"
	if h.DisabledReason != "" {
		s += ": " + h.DisabledReason
	}
	if h.DisabledAt != nil {
		s += " (since " + timeCell(*h.DisabledAt) + ")"
	}
	return s
}

func optTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return timeCell(*t)
}

func or(s, def string) string {
	if s == "" || s == "[]" {
		return def
	}
	return s
}

func hooksEnable(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	return setActive(ctx, e, fs, args, true)
}

func hooksDisable(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	return setActive(ctx, e, fs, args, false)
}

func setActive(ctx context.Context, e env, fs *pflag.FlagSet, args []string, active bool) error {
	id, err := oneID(fs, args, "hook ID")
	if err != nil {
		return err
	}
	word := map[bool]string{true: "enabled", false: "disabled"}[active]
	return withDB(ctx, e, fs, func(adm *app.Admin) error {
		h, changed, err := adm.SetHookActive(ctx, id, active)
		if err != nil {
			return err
		}
		if !changed {
			fmt.Fprintf(e.stdout, "hook %d (%s → %s) is already %s\n", id, h.EventType, h.TargetURL, word)
			return nil
		}
		fmt.Fprintf(e.stdout, "hook %d (%s → %s) %s\n", id, h.EventType, h.TargetURL, word)
		if active {
			// Publishing fans out to active hooks only.
			fmt.Fprintln(e.stdout, "events published from now on are delivered to it; those published while it was disabled were never queued for it")
			fmt.Fprintf(e.stdout, "events given up while it was inactive can be sent again: whisperer events redeliver --since DURATION --webhook %d\n", id)
		}
		return nil
	})
}

func hooksTestFlags(fs *pflag.FlagSet) {
	fs.String("payload", "", "file holding the event's payload (JSON)")
	fs.String("event-type", "", "the event's type (default: the hook's)")
	jsonFlag(fs)
}

func hooksTest(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	id, err := oneID(fs, args, "hook ID")
	if err != nil {
		return err
	}
	file, _ := fs.GetString("payload")
	eventType, _ := fs.GetString("event-type")
	if file == "" {
		return usageErr(fs, "--payload FILE is required")
	}
	payload, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read the payload: %w", err)
	}
	return withReadDB(ctx, e, fs, func(adm *app.Admin) error {
		out, err := adm.TestHook(ctx, id, eventType, payload)
		if err != nil {
			return err
		}
		if wantJSON(fs) {
			return printJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "delivered: %s\n",
			strings.TrimSuffix(yesNo(out.Deliver)+": "+out.Reason, ": "))
		if out.Transform != "" {
			fmt.Fprintf(e.stdout, "transform: %s\n", strings.TrimSuffix(out.Transform+": "+out.TransformError, ": "))
		}
		if out.TransformError != "" {
			fmt.Fprintln(e.stdout, "\nnothing would be sent")
			return nil
		}
		fmt.Fprintf(e.stdout, "\n%s %s\n", out.Method, out.URL)
		names := make([]string, 0, len(out.Headers))
		for k := range out.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			for _, v := range out.Headers[k] {
				fmt.Fprintf(e.stdout, "%s: %s\n", k, v)
			}
		}
		fmt.Fprintf(e.stdout, "\n%s\n", out.Body)
		return nil
	})
}
