// Package djimport imports a dj-whisperer 0.2.x database (PostgreSQL: the
// tables auth_user, authtoken_token, whisperer_webhook and
// whisperer_webhookevent) into Whisperer: users, their Django REST
// framework tokens (so clients keep their Authorization header), hooks and,
// optionally, the event history. See docs/MIGRATING.md.
//
// Every row is judged on its own: a row Whisperer cannot store is skipped
// and listed with the reason, never fatal. A rerun imports nothing twice:
// each row is found again by a natural key (username, token hash, the
// hook's user, target_url and event_type, the event uuid).
package djimport

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Target is the Whisperer database the import writes to, with the
// registries that judge hooks; core/app implements it.
type Target interface {
	UserByName(ctx context.Context, username string) (webhook.User, error)
	CreateUser(ctx context.Context, username string, role webhook.Role) (webhook.User, error)
	TokenOwner(ctx context.Context, key string) (int64, error)
	ImportToken(ctx context.Context, userID int64, key string, created time.Time, revoked bool) (bool, error)
	AddEventTypes(ctx context.Context, names ...string) error
	// CheckHook judges doc as POST /whisperer/hooks/ would, the event type
	// aside (the import registers it). The error is the validator's own
	// failure, not the hook's.
	CheckHook(ctx context.Context, doc map[string]json.RawMessage) (webhook.Webhook, *webhook.ValidationError, error)
	HookID(ctx context.Context, userID int64, targetURL, eventType string) (int64, error)
	ImportWebhook(ctx context.Context, w webhook.Webhook, disabledReason string) (webhook.Webhook, error)
	ExistingEvents(ctx context.Context, uuids []string) (map[string]bool, error)
	ImportEvents(ctx context.Context, evs []webhook.Event) (int, error)
}

// Options tune Run.
type Options struct {
	// Events imports the event history too.
	Events bool
	// Requeue queues undelivered events again (pending, due now) instead
	// of importing them as given up.
	Requeue bool
	// DryRun reads and judges everything and writes nothing.
	DryRun bool
	// MaxPayloadBytes bounds an event's payload (server.max_body_bytes):
	// a larger one could not have been published to Whisperer.
	MaxPayloadBytes int
	// MaxResponseBytes bounds the response body kept (delivery.max_response_bytes).
	MaxResponseBytes int
	// Progress, when set, gets a line every ProgressEvery rows.
	Progress      io.Writer
	ProgressEvery int
}

// maxHookField bounds each JSON or text column of a hook as read: the API
// keeps each under 16 KiB, so anything much larger is refused unread.
const maxHookField = 64 << 10

// maxProblems bounds the report's list; the rest are only counted.
const maxProblems = 1000

// Counts are what happened to one kind of row.
type Counts struct {
	// Imported rows were written (or would be, in a dry run).
	Imported int `json:"imported"`
	// Existing rows were found imported already (or, for users, by name).
	Existing int `json:"existing"`
	// Skipped rows could not be imported; Problems says why.
	Skipped int `json:"skipped"`
}

// Problem is one row that was skipped or changed on the way in.
type Problem struct {
	// Table and ID name the source row; UUID is an event's.
	Table string `json:"table"`
	ID    string `json:"id"`
	UUID  string `json:"uuid,omitempty"`
	// Action is "skipped", "imported inactive", "imported revoked",
	// "imported changed" or "not requeued".
	Action string `json:"action"`
	Reason string `json:"reason"`
}

// Report is the outcome of a run.
type Report struct {
	DryRun bool   `json:"dry_run"`
	Users  Counts `json:"users"`
	Tokens Counts `json:"tokens"`
	Hooks  Counts `json:"hooks"`
	// Inactive counts the hooks imported inactive for a callback or a
	// countdown Whisperer does not accept.
	Inactive int    `json:"hooks_inactive"`
	Events   Counts `json:"events"`
	// Requeued counts the events imported pending, to be delivered again.
	Requeued int       `json:"events_requeued"`
	Problems []Problem `json:"problems"`
	// MoreProblems counts the problems beyond the first 1000, not listed.
	MoreProblems int `json:"more_problems"`
}

func (r *Report) problem(table, id, action, reason string) {
	r.add(Problem{Table: table, ID: id, Action: action, Reason: reason})
}

func (r *Report) add(p Problem) {
	if len(r.Problems) >= maxProblems {
		r.MoreProblems++
		return
	}
	r.Problems = append(r.Problems, p)
}

// WriteText writes r for people.
func (r *Report) WriteText(w io.Writer) {
	verb := "imported"
	if r.DryRun {
		verb = "would import"
		fmt.Fprintln(w, "dry run: nothing was written")
	}
	line := func(what string, c Counts) {
		fmt.Fprintf(w, "%-7s %s %d, already there %d, skipped %d\n", what, verb, c.Imported, c.Existing, c.Skipped)
	}
	line("users", r.Users)
	line("tokens", r.Tokens)
	line("hooks", r.Hooks)
	if r.Inactive > 0 {
		fmt.Fprintf(w, "        of which inactive until fixed: %d\n", r.Inactive)
	}
	line("events", r.Events)
	if r.Requeued > 0 {
		fmt.Fprintf(w, "        of which queued for delivery: %d\n", r.Requeued)
	}
	if len(r.Problems) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d rows need attention:\n", len(r.Problems)+r.MoreProblems)
	for _, p := range r.Problems {
		id := p.ID
		if p.UUID != "" {
			id += " (uuid " + p.UUID + ")"
		}
		fmt.Fprintf(w, "  %s %s: %s: %s\n", p.Table, id, p.Action, p.Reason)
	}
	if r.MoreProblems > 0 {
		fmt.Fprintf(w, "  … and %d more (see --json)\n", r.MoreProblems)
	}
}

// Source is an open dj-whisperer database.
type Source struct{ db *sql.DB }

// Open connects to the dj-whisperer database at dsn (postgres://…) and
// checks that it has dj-whisperer's tables.
func Open(ctx context.Context, dsn string) (*Source, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return nil, fmt.Errorf("--from must be a postgres:// URL: dj-whisperer 0.2 runs on PostgreSQL only")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("dj-whisperer database: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(2)
	s := &Source{db: db}
	if err := s.check(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the connection.
func (s *Source) Close() error { return s.db.Close() }

// required are the columns the import reads.
var required = map[string][]string{
	"auth_user":       {"id", "username", "is_superuser", "is_staff", "is_active"},
	"authtoken_token": {"key", "created", "user_id"},
	"whisperer_webhook": {"id", "created_date", "modified_date", "target_url", "is_active", "secret_key", "event_type",
		"callback", "retry_countdown_config", "additional_headers", "config", "user_id"},
	"whisperer_webhookevent": {"id", "created_date", "modified_date", "uuid", "request_payload", "response_content",
		"response_http_status", "delivered", "request_datetimes", "retry_count", "webhook_id"},
}

func (s *Source) check(ctx context.Context) error {
	for _, table := range []string{"auth_user", "authtoken_token", "whisperer_webhook", "whisperer_webhookevent"} {
		rows, err := s.db.QueryContext(ctx, `SELECT a.attname FROM pg_attribute a
			WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, table)
		if err != nil {
			return fmt.Errorf("dj-whisperer database: %w", err)
		}
		have := map[string]bool{}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return fmt.Errorf("dj-whisperer database: %w", err)
			}
			have[c] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("dj-whisperer database: %w", err)
		}
		if len(have) == 0 {
			return fmt.Errorf("not a dj-whisperer 0.2 database: it has no table %s (give --from the database of the Django project, "+
				"with ?search_path=SCHEMA if its tables are not in public)", table)
		}
		var missing []string
		for _, c := range required[table] {
			if !have[c] {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("not a dj-whisperer 0.2 database: table %s lacks column(s) %s", table, strings.Join(missing, ", "))
		}
	}
	return nil
}

// Run imports src into t.
func Run(ctx context.Context, src *Source, t Target, opts Options) (*Report, error) {
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 1000
	}
	if opts.MaxPayloadBytes <= 0 {
		opts.MaxPayloadBytes = 1 << 20
	}
	im := &importer{src: src, t: t, opts: opts, rep: &Report{DryRun: opts.DryRun, Problems: []Problem{}},
		users: map[int64]userRef{}, hooks: map[int64]hookRef{}}
	if err := im.importUsers(ctx); err != nil {
		return im.rep, err
	}
	if err := im.importTokens(ctx); err != nil {
		return im.rep, err
	}
	if err := im.importHooks(ctx); err != nil {
		return im.rep, err
	}
	if opts.Events {
		if err := im.importEvents(ctx); err != nil {
			return im.rep, err
		}
	}
	return im.rep, nil
}

// userRef is a source user as the target knows it: ID 0 in a dry run for
// a user that would be created.
type userRef struct {
	id       int64
	username string
	active   bool
	role     webhook.Role
}

// hookRef is an imported source hook: ID 0 in a dry run for one that
// would be created; skip says why its events cannot be imported.
type hookRef struct {
	id        int64
	userID    int64
	eventType string
	active    bool
	skip      string
}

type importer struct {
	src   *Source
	t     Target
	opts  Options
	rep   *Report
	users map[int64]userRef
	hooks map[int64]hookRef
}

func (im *importer) progress(what string, done, total int, c Counts) {
	if im.opts.Progress == nil || (done%im.opts.ProgressEvery != 0 && done != total) {
		return
	}
	fmt.Fprintf(im.opts.Progress, "import: %s %d/%d (imported %d, already there %d, skipped %d)\n",
		what, done, total, c.Imported, c.Existing, c.Skipped)
}

// read counts the rows of from (a FROM clause with its WHERE) for the
// progress lines, then queries cols of them in order.
func (im *importer) read(ctx context.Context, table, from, cols, order string) (int, *sql.Rows, error) {
	var n int
	if err := im.src.db.QueryRowContext(ctx, "SELECT count(*) FROM "+from).Scan(&n); err != nil {
		return 0, nil, fmt.Errorf("dj-whisperer database: %w", err)
	}
	rows, err := im.src.db.QueryContext(ctx, "SELECT "+cols+" FROM "+from+" ORDER BY "+order)
	if err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", table, err)
	}
	return n, rows, nil
}

// roleOf maps Django's flags onto a Whisperer role. A superuser saw and
// managed every user's hooks in dj-whisperer's API, as an admin does;
// is_staff is access to Django's admin site, which Whisperer does not
// have, so staff users are plain users. Publishing was a Python call, not
// an API right: no imported user is a publisher.
func roleOf(superuser bool) webhook.Role {
	if superuser {
		return webhook.RoleAdmin
	}
	return webhook.RoleUser
}

// userScope is the users imported: those owning a hook, and superusers.
// A Django project's other users never used dj-whisperer.
const userScope = `(u.is_superuser OR EXISTS (SELECT 1 FROM whisperer_webhook w WHERE w.user_id = u.id))`

func (im *importer) importUsers(ctx context.Context) error {
	total, rows, err := im.read(ctx, "auth_user", "auth_user u WHERE "+userScope,
		"u.id, u.username, COALESCE(u.is_superuser, false), COALESCE(u.is_active, false)", "u.id")
	if err != nil {
		return err
	}
	defer rows.Close()
	done := 0
	for rows.Next() {
		var id int64
		var name sql.NullString
		var super, active bool
		if err := rows.Scan(&id, &name, &super, &active); err != nil {
			return fmt.Errorf("read auth_user: %w", err)
		}
		done++
		c := &im.rep.Users
		username := strings.TrimSpace(name.String)
		if username == "" || len(username) > 150 || strings.ContainsRune(username, 0) {
			c.Skipped++
			im.rep.problem("auth_user", fmt.Sprint(id), "skipped", "the username is empty, longer than 150 bytes or holds a NUL")
			im.progress("users", done, total, *c)
			continue
		}
		u, err := im.t.UserByName(ctx, username)
		role := roleOf(super)
		switch {
		case err == nil:
			role = u.Role
			c.Existing++
			if u.Role != roleOf(super) {
				im.rep.problem("auth_user", fmt.Sprint(id), "imported changed", fmt.Sprintf(
					"user %q exists in Whisperer with role %s, kept (dj-whisperer's flags map to %s)", username, u.Role, roleOf(super)))
			}
		case !errors.Is(err, webhook.ErrNotFound):
			return err
		case im.opts.DryRun:
			c.Imported++
		default:
			if u, err = im.t.CreateUser(ctx, username, roleOf(super)); err != nil {
				return fmt.Errorf("user %q: %w", username, err)
			}
			c.Imported++
		}
		im.users[id] = userRef{id: u.ID, username: username, active: active, role: role}
		im.progress("users", done, total, *c)
	}
	return rows.Err()
}

// validKey is DRF's key as Authenticate can match it: printable ASCII,
// 1 to 40 characters (the column's width).
func validKey(k string) bool {
	if k == "" || len(k) > 40 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}

func (im *importer) importTokens(ctx context.Context) error {
	total, rows, err := im.read(ctx, "authtoken_token", "authtoken_token t JOIN auth_user u ON u.id = t.user_id WHERE "+userScope,
		"left(t.key, 41), t.created, t.user_id", "t.user_id, t.key")
	if err != nil {
		return err
	}
	defer rows.Close()
	done := 0
	for rows.Next() {
		var key string
		var created sql.NullTime
		var userID int64
		if err := rows.Scan(&key, &created, &userID); err != nil {
			return fmt.Errorf("read authtoken_token: %w", err)
		}
		done++
		c := &im.rep.Tokens
		shown := fmt.Sprintf("of user %d starting %q", userID, key[:min(8, len(key))])
		u, ok := im.users[userID]
		switch {
		case !ok:
			c.Skipped++
			im.rep.problem("authtoken_token", shown, "skipped", "its user was not imported")
		case !validKey(key):
			c.Skipped++
			im.rep.problem("authtoken_token", shown, "skipped", "the key is not 1 to 40 printable ASCII characters")
		default:
			if err := im.token(ctx, u, key, created.Time, shown); err != nil {
				return err
			}
		}
		im.progress("tokens", done, total, *c)
	}
	return rows.Err()
}

func (im *importer) token(ctx context.Context, u userRef, key string, created time.Time, shown string) error {
	c := &im.rep.Tokens
	if im.opts.DryRun || u.id == 0 {
		owner, err := im.t.TokenOwner(ctx, key)
		switch {
		case err == nil && u.id != 0 && owner == u.id:
			c.Existing++
			return nil
		case err == nil:
			c.Skipped++
			im.rep.problem("authtoken_token", shown, "skipped", "another Whisperer user has this token")
			return nil
		case !errors.Is(err, webhook.ErrNotFound):
			return err
		}
		c.Imported++
		im.revokedNote(u, shown)
		return nil
	}
	if created.IsZero() {
		created = time.Now()
	}
	// DRF refuses the token of an inactive user; so does its revoked copy.
	ok, err := im.t.ImportToken(ctx, u.id, key, created, !u.active)
	var conflict *webhook.ConflictError
	switch {
	case errors.As(err, &conflict):
		c.Skipped++
		im.rep.problem("authtoken_token", shown, "skipped", "another Whisperer user has this token")
	case err != nil:
		return err
	case ok:
		c.Imported++
		im.revokedNote(u, shown)
	default:
		c.Existing++
	}
	return nil
}

func (im *importer) revokedNote(u userRef, shown string) {
	if !u.active {
		im.rep.problem("authtoken_token", shown, "imported revoked",
			fmt.Sprintf("user %q is inactive in Django, so DRF refused this token; it stays refused", u.username))
	}
}
