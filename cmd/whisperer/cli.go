package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/app"
)

// verb is one CLI command: its usage line, summary, flags and action.
type verb struct {
	name    string
	args    string
	summary string
	flags   func(fs *pflag.FlagSet)
	run     func(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error
}

func verbs() []verb {
	return []verb{
		{name: "serve", summary: "run the server (migrates the database first)", flags: serveFlags, run: serve},
		{name: "migrate", summary: "apply database migrations, encrypt secrets still in clear, and exit", run: migrate},
		{name: "users create", args: "NAME", summary: "create a user and print its first token (last line of stdout)",
			flags: func(fs *pflag.FlagSet) {
				fs.Bool("admin", false, "the user may do everything, for every user")
				fs.Bool("publisher", false, "the user may publish events")
			}, run: usersCreate},
		{name: "users list", summary: "list users: role, creation time, live token count", flags: jsonFlag, run: usersList},
		{name: "tokens list", summary: "list API tokens by their first 8 characters (never the key), revoked ones too", flags: tokensListFlags, run: tokensList},
		{name: "tokens create", args: "USERNAME", summary: "issue a new API token for a user (printed once)", run: tokensCreate},
		{name: "tokens revoke", args: "TOKEN|PREFIX", summary: "revoke a token, given whole or by its first 8 characters (refused when other live tokens share them)", run: tokensRevoke},
		{name: "event-types list", summary: "list the event types hooks may subscribe to", flags: jsonFlag, run: eventTypesList},
		{name: "event-types add", args: "NAME...", summary: "register event types", run: eventTypesAdd},
		{name: "hooks list", summary: "list hooks (every user's)", flags: hooksListFlags, run: hooksList},
		{name: "hooks show", args: "ID", summary: "show a hook and its recent events", flags: jsonFlag, run: hooksShow},
		{name: "hooks test", args: "ID --payload FILE", summary: "dry run: whether the hook's filter lets an event through, and the exact request (body, headers, signatures) it would get; sends nothing", flags: hooksTestFlags, run: hooksTest},
		{name: "hooks enable", args: "ID", summary: "reactivate a hook", run: hooksEnable},
		{name: "hooks disable", args: "ID", summary: "deactivate a hook: new events are not queued for it", run: hooksDisable},
		{name: "events list", summary: "list webhook events, newest first", flags: eventsListFlags, run: eventsList},
		{name: "events show", args: "UUID", summary: "show an event and its attempt log", flags: jsonFlag, run: eventsShow},
		{name: "events redeliver", args: "UUID | --since WHEN", summary: "deliver one event again, or every failed or given-up event created in a time range",
			flags: eventsRedeliverFlags, run: eventsRedeliver},
		{name: "countdown preview", summary: "print the retry schedule of a countdown (built-in or plugin)", flags: countdownPreviewFlags, run: countdownPreview},
		{name: "retention purge", summary: "delete old delivered events now, as the server does in the background", flags: retentionPurgeFlags, run: retentionPurge},
		{name: "plugins list", summary: "load the plugin directory and list what each plugin registers; exit 1 if one is invalid", flags: jsonFlag, run: pluginsList},
		{name: "plugins check", args: "FILE.wasm", summary: "load one plugin and print (as JSON) what it registers and whether it is valid, or what is wrong", flags: jsonFlag, run: pluginsCheck},
		{name: "keys generate", summary: "print a new encryption key for security.encryption_keys", run: keysGenerate},
		{name: "keys rotate", summary: "re-encrypt every hook's secrets under the first of security.encryption_keys (online, resumable)",
			flags: keysRotateFlags, run: keysRotate},
		{name: "import dj-whisperer", summary: "import users, tokens, hooks and (--events) events from a dj-whisperer 0.2 database",
			flags: importDJFlags, run: importDJ},
		{name: "listen", summary: "a local receiver that prints each delivery and checks its signatures, to try hooks out",
			flags: listenFlags, run: listenVerb},
		{name: "health", summary: "ask a running server's /readyz; exit 0 when ready (the container's health check)", flags: healthFlags, run: health},
		{name: "version", summary: "print the version, commit and Go version this binary was built from", flags: jsonFlag, run: version},
	}
}

func usage(e env) {
	fmt.Fprintf(e.stderr, "Whisperer is a webhook delivery server.\n\nUsage: whisperer VERB [flags]\n\nVerbs:\n")
	tw := tabwriter.NewWriter(e.stderr, 2, 4, 2, ' ', 0)
	for _, v := range verbs() {
		fmt.Fprintf(tw, "  %s %s\t%s\n", v.name, v.args, v.summary)
	}
	tw.Flush()
	fmt.Fprintf(e.stderr, "\nEvery verb takes --config FILE (or $WHISPERER_CONFIG; default ./%s if present)\nand --help. Configuration keys are documented in config.koanf.yaml.\n", app.DefaultConfigFile)
}

func run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	e := env{environ: environ, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	var v *verb
	all := verbs()
	for i := range all {
		words := strings.Fields(all[i].name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == all[i].name {
			v, args = &all[i], args[len(words):]
			break
		}
	}
	if v == nil {
		fmt.Fprintf(stderr, "whisperer: unknown verb %q\n\n", strings.Join(args[:min(2, len(args))], " "))
		usage(e)
		return errUsage
	}
	fs := pflag.NewFlagSet("whisperer "+v.name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "configuration file (default $WHISPERER_CONFIG or ./"+app.DefaultConfigFile+")")
	if v.flags != nil {
		v.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: whisperer %s [flags] %s\n\n%s.\n\nFlags:\n%s", v.name, v.args, v.summary, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		fmt.Fprintf(stderr, "whisperer %s: %v\n", v.name, err)
		fs.Usage()
		return errUsage
	}
	return v.run(ctx, e, fs, fs.Args())
}

// flagKeys are the configuration keys of the verbs' short flags.
var flagKeys = map[string]string{"addr": "server.addr", "database-url": "database.url"}

func serveFlags(fs *pflag.FlagSet) {
	fs.String("addr", "", "listen address (server.addr)")
	fs.String("database-url", "", "database URL (database.url)")
}

func serve(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	cfg, err := app.LoadConfigEnv(e.environ, e.stderr, fs, flagKeys)
	if err != nil {
		return err
	}
	logger := app.NewLogger(cfg.Log, e.stderr)
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	// SIGHUP reloads the plugin directory at once (it is also polled) and
	// the TLS certificate.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				if err := a.Reload(ctx); err != nil {
					logger.Warn("reload reported problems", "error", err)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return a.Run(ctx)
}

func migrate(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	cfg, err := app.LoadConfigEnv(e.environ, e.stderr, fs, flagKeys)
	if err != nil {
		return err
	}
	adm, applied, err := app.Migrate(ctx, cfg, e.stderr)
	if err != nil {
		return err
	}
	defer adm.Close()
	// Hooks an earlier release wrote in clear are sealed now rather than
	// at the next start.
	if err := adm.SealLegacySecrets(ctx); err != nil {
		return err
	}
	switch {
	case len(applied) == 0:
		fmt.Fprintf(e.stdout, "%s database is up to date: no migration to apply\n", adm.Dialect())
	default:
		empty := ""
		if strings.HasPrefix(applied[0], "001_") {
			empty = " (the database was empty)"
		}
		fmt.Fprintf(e.stdout, "applied %d migration(s) to the %s database%s: %s\n", len(applied), adm.Dialect(), empty, strings.Join(applied, ", "))
	}
	return nil
}

func usersCreate(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if len(args) != 1 {
		fs.Usage()
		return errUsage
	}
	admin, _ := fs.GetBool("admin")
	publisher, _ := fs.GetBool("publisher")
	if admin && publisher {
		return fmt.Errorf("choose one of --admin and --publisher")
	}
	return withDB(ctx, e, fs, func(adm *app.Admin) error {
		u, tok, err := adm.CreateUser(ctx, args[0], admin, publisher)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "created user %q (role %s, id %d); its token, shown only now:\n%s\n", u.Username, u.Role, u.ID, tok)
		return nil
	})
}

func tokensCreate(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if len(args) != 1 {
		fs.Usage()
		return errUsage
	}
	return withDB(ctx, e, fs, func(adm *app.Admin) error {
		u, tok, err := adm.CreateToken(ctx, args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "new token for %q, shown only now:\n%s\n", u.Username, tok)
		return nil
	})
}

func tokensRevoke(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if len(args) != 1 {
		fs.Usage()
		return errUsage
	}
	return withDB(ctx, e, fs, func(adm *app.Admin) error {
		n, err := adm.RevokeToken(ctx, args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked %d token\n", n)
		return nil
	})
}

func eventTypesList(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	return withReadDB(ctx, e, fs, func(adm *app.Admin) error {
		names, err := adm.EventTypes(ctx)
		if err != nil {
			return err
		}
		if wantJSON(fs) {
			return printJSON(e.stdout, names)
		}
		for _, n := range names {
			fmt.Fprintln(e.stdout, n)
		}
		return nil
	})
}

func eventTypesAdd(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if len(args) == 0 {
		fs.Usage()
		return errUsage
	}
	for _, n := range args {
		if err := app.ValidateEventType(n); err != nil {
			return err
		}
	}
	return withDB(ctx, e, fs, func(adm *app.Admin) error {
		known, err := adm.EventTypes(ctx)
		if err != nil {
			return err
		}
		var added, had []string
		for _, n := range args {
			if slices.Contains(known, n) || slices.Contains(added, n) {
				had = append(had, n)
			} else {
				added = append(added, n)
			}
		}
		if err := adm.AddEventTypes(ctx, added...); err != nil {
			return err
		}
		if len(added) > 0 {
			fmt.Fprintf(e.stdout, "added %s\n", strings.Join(added, ", "))
		}
		if len(had) > 0 {
			fmt.Fprintf(e.stdout, "already registered: %s\n", strings.Join(had, ", "))
		}
		return nil
	})
}

// parseWhen reads an RFC 3339 time, a YYYY-MM-DD day (UTC) or a duration
// before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, a YYYY-MM-DD date or a duration like 24h", s)
}

func pluginsList(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	cfg, err := app.LoadConfigEnv(e.environ, e.stderr, fs, flagKeys)
	if err != nil {
		return err
	}
	infos, err := app.ListPlugins(ctx, cfg, e.stderr)
	if err != nil {
		return err
	}
	if wantJSON(fs) {
		err = printJSON(e.stdout, infos)
	} else {
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "FILE\tCOUNTDOWNS\tCALLBACKS\tFILTERS\tTRANSFORMS\tSTATUS")
		for _, in := range infos {
			status := "valid"
			if !in.Valid {
				status = "error: " + in.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.File, strings.Join(in.Countdowns, ","), strings.Join(in.Callbacks, ","),
				strings.Join(in.Filters, ","), strings.Join(in.Transforms, ","), status)
		}
		err = tw.Flush()
	}
	if err != nil {
		return err
	}
	var bad []string
	for _, in := range infos {
		if !in.Valid {
			bad = append(bad, in.File)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d of %d plugin(s) in %s failed to load: %s", len(bad), len(infos), cfg.Plugins.Dir, strings.Join(bad, ", "))
	}
	return nil
}

func pluginsCheck(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if len(args) != 1 {
		fs.Usage()
		return errUsage
	}
	cfg, err := app.LoadConfigEnv(e.environ, e.stderr, fs, flagKeys)
	if err != nil {
		return err
	}
	info, err := app.CheckPlugin(ctx, cfg, args[0], e.stderr)
	if err != nil {
		return fmt.Errorf("%s is not a valid plugin: %w", args[0], err)
	}
	return printJSON(e.stdout, info)
}

func noArgs(fs *pflag.FlagSet, args []string) error {
	if len(args) > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(args, " "))
		fs.Usage()
		return errUsage
	}
	return nil
}

func usersList(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	return withReadDB(ctx, e, fs, func(adm *app.Admin) error {
		us, err := adm.Users(ctx)
		if err != nil {
			return err
		}
		return printList(e, fs, us, "ID\tNAME\tROLE\tCREATED\tLIVE TOKENS", func(u app.UserInfo) string {
			return fmt.Sprintf("%d\t%s\t%s\t%s\t%d", u.ID, u.Username, u.Role, timeCell(u.CreatedAt), u.LiveTokens)
		}, fmt.Sprintf("%d user(s)", len(us)))
	})
}

func tokensListFlags(fs *pflag.FlagSet) {
	fs.String("user", "", "only this user's tokens")
	jsonFlag(fs)
}

func tokensList(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	user, _ := fs.GetString("user")
	return withReadDB(ctx, e, fs, func(adm *app.Admin) error {
		ts, err := adm.Tokens(ctx, user)
		if err != nil {
			return err
		}
		return printList(e, fs, ts, "PREFIX\tUSER\tCREATED\tREVOKED", func(t app.TokenInfo) string {
			revoked := "no"
			if t.RevokedAt != nil {
				revoked = timeCell(*t.RevokedAt)
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s", t.Prefix, t.User, timeCell(t.CreatedAt), revoked)
		}, fmt.Sprintf("%d token(s); Whisperer does not record when a token was last used", len(ts)))
	})
}
