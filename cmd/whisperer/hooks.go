package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/config"
	"github.com/whisperer/whisperer/core/store"
	"github.com/whisperer/whisperer/core/webhook"
)

// hookJSON is a hook as the CLI prints it. Secrets, header values and
// basic-auth passwords are never printed: only whether they are set.
type hookJSON struct {
	ID             int64                   `json:"id"`
	UserID         int64                   `json:"user_id"`
	User           string                  `json:"user"`
	EventType      string                  `json:"event_type"`
	TargetURL      string                  `json:"target_url"`
	IsActive       bool                    `json:"is_active"`
	RetryCountdown webhook.CountdownConfig `json:"retry_countdown_config"`
	Callback       string                  `json:"callback,omitempty"`
	HasSecret      bool                    `json:"has_secret"`
	BasicAuth      bool                    `json:"basic_auth"`
	HeaderNames    []string                `json:"additional_header_names"`
	CreatedAt      time.Time               `json:"created_at"`
	ModifiedAt     time.Time               `json:"modified_at"`
	DisabledReason string                  `json:"disabled_reason,omitempty"`
	DisabledAt     *time.Time              `json:"disabled_at,omitempty"`
	FailingSince   *time.Time              `json:"failing_since,omitempty"`
	RecentEvents   []eventJSON             `json:"recent_events,omitempty"`
}

func toHookJSON(w webhook.Webhook, users map[int64]string) hookJSON {
	names := make([]string, 0, len(w.AdditionalHeaders))
	for k := range w.AdditionalHeaders {
		names = append(names, k)
	}
	sort.Strings(names)
	_, basic := w.BasicAuth()
	return hookJSON{
		ID: w.ID, UserID: w.UserID, User: users[w.UserID], EventType: w.EventType, TargetURL: webhook.RedactURL(w.TargetURL),
		IsActive: w.IsActive, RetryCountdown: w.RetryCountdown, Callback: w.Callback,
		HasSecret: w.SecretKey != "", BasicAuth: basic, HeaderNames: names,
		CreatedAt: w.CreatedAt, ModifiedAt: w.ModifiedAt,
		DisabledReason: w.DisabledReason, DisabledAt: w.DisabledAt, FailingSince: w.FailingSince,
	}
}

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
	return withReadDB(ctx, e, fs, func(s *store.Store, _ *config.Config) error {
		sc := webhook.Scope{All: true}
		if userName != "" {
			u, err := s.UserByName(ctx, userName)
			if errors.Is(err, webhook.ErrNotFound) {
				return fmt.Errorf("no user named %q", userName)
			} else if err != nil {
				return err
			}
			sc = webhook.Scope{UserID: u.ID}
		}
		f := webhook.HookFilter{EventType: eventType}
		if inactive {
			f.IsActive = new(bool)
		}
		users, err := s.UserNames(ctx)
		if err != nil {
			return err
		}
		out := []hookJSON{}
		p := webhook.Page{Limit: 1000}
		for {
			hooks, info, err := s.ListWebhooks(ctx, sc, f, p)
			if err != nil {
				return err
			}
			for _, h := range hooks {
				out = append(out, toHookJSON(h, users))
			}
			if !info.HasNext || len(hooks) == 0 {
				break
			}
			p.Before = hooks[len(hooks)-1].ID
		}
		if wantJSON(fs) {
			return printJSON(e.stdout, out)
		}
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "ID\tUSER\tEVENT TYPE\tTARGET URL\tACTIVE\tRETRY\tCREATED")
		for _, h := range out {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.User, h.EventType, excerpt(h.TargetURL, 60),
				yesNo(h.IsActive), h.RetryCountdown.Choice+" "+string(h.RetryCountdown.Kwargs), timeCell(h.CreatedAt))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "%d hook(s)\n", len(out))
		return nil
	})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func findHook(ctx context.Context, s *store.Store, id int64) (webhook.Webhook, error) {
	h, err := s.Webhook(ctx, webhook.Scope{All: true}, id)
	if errors.Is(err, webhook.ErrNotFound) {
		return h, fmt.Errorf("no hook with id %d", id)
	}
	return h, err
}

func hooksShow(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	id, err := oneID(fs, args, "hook ID")
	if err != nil {
		return err
	}
	return withReadDB(ctx, e, fs, func(s *store.Store, _ *config.Config) error {
		h, err := findHook(ctx, s, id)
		if err != nil {
			return err
		}
		users, err := s.UserNames(ctx)
		if err != nil {
			return err
		}
		jobs, _, err := s.ListEvents(ctx, webhook.Scope{All: true}, webhook.EventFilter{WebhookID: id}, webhook.Page{Limit: 5})
		if err != nil {
			return err
		}
		out := toHookJSON(h, users)
		for _, j := range jobs {
			out.RecentEvents = append(out.RecentEvents, toEventJSON(j, false))
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
func activeCell(h hookJSON) string {
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
	return withDB(ctx, e, fs, func(s *store.Store) error {
		h, err := findHook(ctx, s, id)
		if err != nil {
			return err
		}
		if h.IsActive == active {
			fmt.Fprintf(e.stdout, "hook %d (%s → %s) is already %s\n", id, h.EventType, webhook.RedactURL(h.TargetURL), word)
			return nil
		}
		h.IsActive = active
		if _, err := s.UpdateWebhook(ctx, webhook.Scope{All: true}, h, true); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "hook %d (%s → %s) %s\n", id, h.EventType, webhook.RedactURL(h.TargetURL), word)
		if active {
			// Publishing fans out to active hooks only.
			fmt.Fprintln(e.stdout, "events published from now on are delivered to it; those published while it was disabled were never queued for it")
			fmt.Fprintf(e.stdout, "events given up while it was inactive can be sent again: whisperer events redeliver --since DURATION --webhook %d\n", id)
		}
		return nil
	})
}
