package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/uptrace/bun"
)

// Sealer encrypts the hooks' secret columns at rest; *secret.Keyring
// implements it. Seal binds a value to ad (table, column and row id), so a
// sealed value copied to another row or column does not Open.
type Sealer interface {
	// KeyID names the key Seal uses; Has reports whether Open has key id.
	KeyID() string
	Has(id string) bool
	Seal(plaintext, ad string) string
	Open(sealed, ad string) (string, error)
}

// secretCols are a hook row's columns that hold secrets: secret_key,
// previous_secret_key, additional_headers (whole) and config (only its
// auth.password is sealed; the rest stays readable).
type secretCols struct{ secret, previous, headers, config string }

func (r *webhookRow) secrets() secretCols {
	return secretCols{r.SecretKey, r.PreviousSecretKey, r.AdditionalHeaders, r.Config}
}

func (r *webhookRow) setSecrets(c secretCols) {
	r.SecretKey, r.PreviousSecretKey, r.AdditionalHeaders, r.Config = c.secret, c.previous, c.headers, c.config
}

// openSecrets returns r's secret columns in clear.
func (r *webhookRow) openSecrets(sl Sealer) (secretCols, error) {
	c := r.secrets()
	if r.SecretsKeyID == "" {
		return c, nil // written in clear, before encryption
	}
	if sl == nil {
		return c, fmt.Errorf("hook %d: its secrets are encrypted (key %s) and no key is configured (security.encryption_keys)", r.ID, r.SecretsKeyID)
	}
	return mapSecrets(r.ID, c, sl.Open)
}

// sealSecrets seals r's clear secret columns for its id (which must be
// set) and records the key; without a Sealer they stay in clear.
func (r *webhookRow) sealSecrets(sl Sealer) error {
	if sl == nil {
		r.SecretsKeyID = ""
		return nil
	}
	c, err := mapSecrets(r.ID, r.secrets(), func(v, ad string) (string, error) { return sl.Seal(v, ad), nil })
	if err != nil {
		return err
	}
	r.setSecrets(c)
	r.SecretsKeyID = sl.KeyID()
	return nil
}

// mapSecrets applies f to each non-empty secret of c, with the additional
// data that binds it to hook id and its column.
func mapSecrets(id int64, c secretCols, f func(value, ad string) (string, error)) (secretCols, error) {
	var errs []error
	one := func(column, v string) string {
		if v == "" {
			return v
		}
		out, err := f(v, "webhooks."+column+":"+strconv.FormatInt(id, 10))
		if err != nil {
			errs = append(errs, fmt.Errorf("hook %d %s: %w", id, column, err))
		}
		return out
	}
	out := secretCols{
		secret:   one("secret_key", c.secret),
		previous: one("previous_secret_key", c.previous),
		headers:  one("additional_headers", c.headers),
		config:   c.config,
	}
	if strings.Contains(c.config, `"password"`) {
		dec := json.NewDecoder(strings.NewReader(c.config))
		dec.UseNumber()
		var cfg map[string]any
		if err := dec.Decode(&cfg); err != nil {
			return out, fmt.Errorf("hook %d config: %w", id, err)
		}
		if auth, ok := cfg["auth"].(map[string]any); ok {
			if p, ok := auth["password"].(string); ok {
				auth["password"] = one("config.auth.password", p)
				b, err := json.Marshal(cfg)
				if err != nil {
					return out, err
				}
				out.config = string(b)
			}
		}
	}
	return out, errors.Join(errs...)
}

// checkKeys fails when hooks are sealed under a key the Sealer lacks: a
// node with such a keyring could not deliver them, so it must not start.
func (s *Store) checkKeys(ctx context.Context) error {
	var ids []string
	if err := s.db.NewSelect().Model((*webhookRow)(nil)).Distinct().Column("secrets_key_id").
		Where("secrets_key_id <> ''").Scan(ctx, &ids); err != nil {
		return fmt.Errorf("check encryption keys: %w", err)
	}
	var missing []string
	for _, id := range ids {
		if s.sealer == nil || !s.sealer.Has(id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("hooks are encrypted under key(s) %s, which security.encryption_keys does not hold: add the key(s) back (any position but first), then run `whisperer keys rotate`", strings.Join(missing, ", "))
	}
	return nil
}

// CountSealedUnder counts the hooks whose secrets are sealed under key id.
func (s *Store) CountSealedUnder(ctx context.Context, id string) (int, error) {
	n, err := s.db.NewSelect().Model((*webhookRow)(nil)).Where("secrets_key_id = ?", id).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count hooks sealed under key %s: %w", id, err)
	}
	return int(n), nil
}

// SealProgress is how far SealSecrets has got: Done of Total hooks.
// URLs counts the hooks whose target_url credentials were moved into
// config.auth; URLsKept lists the hooks whose target_url still has them
// because without them it would be another hook's (user, target_url,
// event_type).
//
// Unreadable lists the hooks whose sealed values do not open (tampered or
// corrupt rows): they are left as they are, so that one such row stops
// neither the pass nor a node's start; their events fail alone until the
// owner sets a new secret_key.
type SealProgress struct {
	Done, Skipped, Total int64
	URLs                 int64
	URLsKept             []int64
	Unreadable           []int64
}

// SealSecrets seals every hook whose secrets are in clear or under another
// key than the Sealer's first, batch hooks per transaction, calling
// progress after each batch. It is what the server runs at start (rows
// written before encryption) and what `whisperer keys rotate` runs.
//
// It also moves the credentials of a target_url written by a release that
// accepted them (http://user:pw@host/) into config.auth, the password
// sealed, and strips them from the URL (see moveURLCredentials).
//
// It is online and safe to interrupt or run twice: a row is rewritten only
// if its secret columns are still what was read (compare-and-set), and a
// rerun picks up whatever is left. Skipped counts the rows someone changed
// meanwhile; a node with the same first key wrote them sealed already.
func (s *Store) SealSecrets(ctx context.Context, batch int, progress func(SealProgress)) (SealProgress, error) {
	var p SealProgress
	if s.sealer == nil {
		return p, errors.New("seal secrets: no encryption key configured")
	}
	if err := s.checkKeys(ctx); err != nil {
		return p, err
	}
	batch = cmpOr(batch, 500)
	cur := s.sealer.KeyID()
	n, err := s.db.NewSelect().Model((*webhookRow)(nil)).Where("secrets_key_id <> ?", cur).Count(ctx)
	if err != nil {
		return p, fmt.Errorf("seal secrets: %w", err)
	}
	p.Total = int64(n)
	nURL, err := s.db.NewSelect().Model((*webhookRow)(nil)).Where("target_url LIKE '%@%'").Count(ctx)
	if err != nil {
		return p, fmt.Errorf("seal secrets: %w", err)
	}
	if n+nURL > 0 {
		// The clear values must not survive the rewrite.
		undo, err := s.drv.scrub(ctx)
		if err != nil {
			return p, fmt.Errorf("seal secrets: %w", err)
		}
		defer undo()
	}
	for after := int64(0); ; {
		var rows []webhookRow
		if err := s.db.NewSelect().Model(&rows).
			Column("id", "secret_key", "previous_secret_key", "additional_headers", "config", "secrets_key_id").
			Where("secrets_key_id <> ?", cur).Where("id > ?", after).OrderExpr("id").Limit(int64(batch)).
			Scan(ctx); err != nil {
			return p, fmt.Errorf("seal secrets: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		after = rows[len(rows)-1].ID
		var done, unreadable int64
		err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			done, unreadable = 0, 0
			for i := range rows {
				r := &rows[i]
				old := *r
				clear, err := r.openSecrets(s.sealer)
				if err != nil {
					p.unreadable(r.ID)
					unreadable++
					continue
				}
				r.setSecrets(clear)
				if err := r.sealSecrets(s.sealer); err != nil {
					return err
				}
				ok, err := rewrite(ctx, tx, r, &old, false)
				if err != nil {
					return err
				}
				if ok {
					done++
				}
			}
			return nil
		})
		if err != nil {
			return p, fmt.Errorf("seal secrets (hooks after %d): %w", rows[0].ID-1, err)
		}
		p.Done += done
		p.Skipped += int64(len(rows)) - done - unreadable
		if progress != nil {
			progress(p)
		}
	}
	if nURL == 0 {
		return p, nil
	}
	return p, s.moveURLCredentials(ctx, batch, &p)
}

// rewrite writes r's sealed columns (and its target_url, with url) over
// old, compare-and-set: only while the row still holds what was read, so
// a hook its owner changed meanwhile is left to that write. It reports
// whether the row was written.
func rewrite(ctx context.Context, tx bun.Tx, r, old *webhookRow, url bool) (bool, error) {
	cols := []string{"secret_key", "previous_secret_key", "additional_headers", "config", "secrets_key_id"}
	q := tx.NewUpdate().Model(r).WherePK().Where("secrets_key_id = ?", old.SecretsKeyID).
		Where("secret_key = ?", old.SecretKey).Where("previous_secret_key = ?", old.PreviousSecretKey).
		Where("additional_headers = ?", old.AdditionalHeaders).Where("config = ?", old.Config)
	if url {
		cols = append(cols, "target_url")
		q = q.Where("target_url = ?", old.TargetURL)
	}
	res, err := q.Column(cols...).Exec(ctx)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// unreadable records a hook whose sealed values do not open, once.
func (p *SealProgress) unreadable(id int64) {
	if !slices.Contains(p.Unreadable, id) {
		p.Unreadable = append(p.Unreadable, id)
	}
}

// moveURLCredentials rewrites the hooks whose target_url has userinfo: a
// release that accepted it stored it in clear and showed it to every
// reader. The credentials go to config.auth (basic, as the HTTP client
// sent them from the URL), the password sealed; a hook that has a
// config.auth already keeps it, as it is what deliveries sent (an explicit
// Authorization replaces the URL's), and only loses the URL's userinfo.
// A hook whose stripped URL is another hook's is left as it is and listed
// in p.URLsKept. Rows are rewritten compare-and-set, as in SealSecrets.
func (s *Store) moveURLCredentials(ctx context.Context, batch int, p *SealProgress) error {
	for after := int64(0); ; {
		var rows []webhookRow
		if err := s.db.NewSelect().Model(&rows).
			Column("id", "user_id", "target_url", "event_type", "secret_key", "previous_secret_key",
				"additional_headers", "config", "secrets_key_id").
			Where("target_url LIKE '%@%'").Where("id > ?", after).OrderExpr("id").Limit(int64(batch)).
			Scan(ctx); err != nil {
			return fmt.Errorf("move target_url credentials: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		after = rows[len(rows)-1].ID
		err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for i := range rows {
				r := &rows[i]
				old := *r
				moved, err := r.moveURLCredentials(s.sealer)
				if err != nil {
					p.unreadable(r.ID)
					continue
				}
				if !moved { // "@" elsewhere in the URL: the next row
					continue
				}
				taken, err := tx.NewSelect().Model((*webhookRow)(nil)).Where("user_id = ?", r.UserID).
					Where("target_url = ?", r.TargetURL).Where("event_type = ?", r.EventType).
					Where("id <> ?", r.ID).Exists(ctx)
				if err != nil {
					return err
				}
				if taken {
					p.URLsKept = append(p.URLsKept, r.ID)
					continue
				}
				ok, err := rewrite(ctx, tx, r, &old, true)
				if err != nil {
					return err
				}
				if ok {
					p.URLs++
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("move target_url credentials (hooks after %d): %w", rows[0].ID-1, err)
		}
	}
}

// moveURLCredentials strips r.TargetURL's userinfo, moving it to
// config.auth unless that is set, and seals r's secrets; moved is false
// (and r unchanged) when the URL has no userinfo.
func (r *webhookRow) moveURLCredentials(sl Sealer) (moved bool, err error) {
	u, err := url.Parse(r.TargetURL)
	if err != nil || u.User == nil {
		return false, nil // "@" elsewhere in the URL
	}
	clear, err := r.openSecrets(sl)
	if err != nil {
		return false, err
	}
	cfg := map[string]any{}
	if c := strings.TrimSpace(clear.config); c != "" && c != "null" {
		dec := json.NewDecoder(strings.NewReader(c))
		dec.UseNumber()
		if err := dec.Decode(&cfg); err != nil {
			return false, fmt.Errorf("hook %d config: %w", r.ID, err)
		}
		if cfg == nil {
			cfg = map[string]any{}
		}
	}
	if _, ok := cfg["auth"].(map[string]any); !ok {
		pw, _ := u.User.Password()
		cfg["auth"] = map[string]any{"auth_type": "basic", "username": u.User.Username(), "password": pw}
		b, err := json.Marshal(cfg)
		if err != nil {
			return false, err
		}
		clear.config = string(b)
	}
	u.User = nil
	r.TargetURL = u.String()
	r.setSecrets(clear)
	return true, r.sealSecrets(sl)
}

// restrictFiles makes the SQLite database and its -wal and -shm files
// readable by their owner only, whatever the umask, and tightens files an
// earlier release created 0644.
func restrictFiles(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("restrict %s to its owner: %w", p, err)
			}
		}
	}
	return nil
}

// createPrivate creates the database file 0600 before SQLite opens it,
// which would create it with the umask's mode (usually 0644).
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		// The file is created, so what is missing is its directory.
		return fmt.Errorf("cannot create the SQLite database %s: its directory %s does not exist (create it, or point database.url elsewhere)",
			path, filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("cannot create the SQLite database: %w", err) // *PathError names the path
	}
	return f.Close()
}
