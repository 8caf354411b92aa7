package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// CreateUser adds a user with role. A taken username is
// webhook.ErrAlreadyExists.
func (s *Store) CreateUser(ctx context.Context, username string, role webhook.Role) (webhook.User, error) {
	username = strings.TrimSpace(username)
	if username == "" || len(username) > 150 {
		return webhook.User{}, webhook.NewValidationError("username", "Enter a name of 1 to 150 characters.")
	}
	switch role {
	case webhook.RoleUser, webhook.RolePublisher, webhook.RoleAdmin:
	default:
		return webhook.User{}, webhook.NewValidationError("role", fmt.Sprintf("%q is not a valid role.", role))
	}
	row := &userRow{Username: username, Role: string(role), CreatedAt: s.now().UTC()}
	if _, err := s.db.NewInsert().Model(row).Returning("id").Exec(ctx); err != nil {
		if isUniqueViolation(err) {
			return webhook.User{}, fmt.Errorf("user %q: %w", username, webhook.ErrAlreadyExists)
		}
		return webhook.User{}, fmt.Errorf("create user: %w", err)
	}
	return row.domain(), nil
}

// UserByName returns the user called username.
func (s *Store) UserByName(ctx context.Context, username string) (webhook.User, error) {
	var row userRow
	if err := s.db.NewSelect().Model(&row).Where("username = ?", username).Scan(ctx); err != nil {
		return webhook.User{}, fmt.Errorf("user %q: %w", username, notFound(err))
	}
	return row.domain(), nil
}

// CreateToken issues a new API key for the user. The key is returned once;
// only its SHA-256 is stored (keys are 160 random bits, so a fast hash is
// enough: there is nothing to brute-force).
func (s *Store) CreateToken(ctx context.Context, userID int64) (string, error) {
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	key := hex.EncodeToString(raw[:]) // 40 hex characters, like DRF's tokens
	row := &tokenRow{UserID: userID, KeyHash: hashKey(key), Prefix: key[:8], CreatedAt: s.now().UTC()}
	if _, err := s.db.NewInsert().Model(row).Exec(ctx); err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	return key, nil
}

// RevokeToken revokes the token whose key or 8-character prefix is given
// and returns how many it revoked (one). A prefix that more than one live
// token shares is refused (a *webhook.ConflictError naming their users):
// prefixes are 32 bits, so two users' tokens can share one, and guessing
// would revoke someone else's. Nothing matching is webhook.ErrNotFound.
// The revocation is honoured at once by this process and, through the
// authentication cache's checks, by the other processes on the database
// (see authCache).
func (s *Store) RevokeToken(ctx context.Context, keyOrPrefix string) (int64, error) {
	byPrefix := len(keyOrPrefix) == 8
	var n int64
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		q := tx.NewUpdate().Model((*tokenRow)(nil)).Set("revoked_at = ?", s.now().UTC()).Where("revoked_at IS NULL")
		if byPrefix {
			// Only when the prefix is unique, decided in the same statement.
			q = q.Where("prefix = ?", keyOrPrefix).
				Where("(SELECT count(*) FROM api_tokens AS other WHERE other.prefix = ? AND other.revoked_at IS NULL) = 1", keyOrPrefix)
		} else {
			q = q.Where("key_hash = ?", hashKey(keyOrPrefix))
		}
		res, err := q.Exec(ctx)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		if n > 0 {
			// Delivered to every node's WatchRevocations at commit.
			err = s.drv.notify(ctx, tx, revokeChannel)
		}
		return err
	})
	s.auth.invalidate()
	if err != nil {
		return 0, fmt.Errorf("revoke token: %w", err)
	}
	if n > 0 {
		return n, nil
	}
	shown := keyOrPrefix[:min(8, len(keyOrPrefix))]
	if byPrefix {
		var users []string
		if err := s.db.NewSelect().Table("api_tokens").Join("JOIN users AS u ON u.id = api_tokens.user_id").
			ColumnExpr("u.username").Where("api_tokens.prefix = ?", keyOrPrefix).Where("api_tokens.revoked_at IS NULL").
			OrderExpr("u.username").Scan(ctx, &users); err != nil {
			return 0, fmt.Errorf("revoke token: %w", err)
		}
		if len(users) > 1 {
			return 0, &webhook.ConflictError{Detail: fmt.Sprintf(
				"%d live tokens start with %q (users %s); give the whole token to revoke one", len(users), shown, strings.Join(users, ", "))}
		}
	}
	// Never more than the 8-character prefix: the rest is the secret.
	what := fmt.Sprintf("the prefix %q", shown)
	if !byPrefix {
		what = fmt.Sprintf("the token starting %q", shown)
	}
	return 0, &tokenNotFound{"no live token matches " + what + ": give a live token whole or its first 8 characters"}
}

// tokenNotFound is RevokeToken's webhook.ErrNotFound, with a message for
// the operator instead of "webhook: not found".
type tokenNotFound struct{ msg string }

func (e *tokenNotFound) Error() string { return e.msg }
func (e *tokenNotFound) Unwrap() error { return webhook.ErrNotFound }

// Authenticate returns the owner of an unrevoked key, or
// webhook.ErrUnauthenticated.
func (s *Store) Authenticate(ctx context.Context, key string) (webhook.User, error) {
	hash := hashKey(key)
	now := time.Now() // not s.now: cache expiry is real time, whatever the test clock
	cache := s.authCacheUsable(ctx)
	gen := s.auth.generation()
	if cache {
		if u, ok := s.auth.get(hash, now); ok {
			return u, nil
		}
	}
	var u userRow
	err := s.db.NewSelect().Model(&u).
		Join("JOIN api_tokens AS t ON t.user_id = user_row.id").
		Where("t.key_hash = ?", hash).Where("t.revoked_at IS NULL").
		Scan(ctx)
	if err != nil {
		if nf := notFound(err); nf == webhook.ErrNotFound {
			return webhook.User{}, webhook.ErrUnauthenticated
		}
		return webhook.User{}, fmt.Errorf("%w: authenticate: %v", webhook.ErrUnavailable, err)
	}
	if cache {
		s.auth.put(hash, u.domain(), now, gen)
	}
	return u.domain(), nil
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// AddEventTypes registers event type names; existing ones are kept. It
// refuses the operational namespace (webhook.OpsPrefix): those types are
// Whisperer's own (AddOpsEventTypes), and a hook on one reads every
// tenant's operational events.
func (s *Store) AddEventTypes(ctx context.Context, names ...string) error {
	for _, n := range names {
		if webhook.Reserved(n) {
			return fmt.Errorf("add event types: %q is reserved: event types starting with %q are Whisperer's operational events",
				n, webhook.OpsPrefix)
		}
	}
	return s.addEventTypes(ctx, names)
}

// AddOpsEventTypes registers Whisperer's operational event types.
func (s *Store) AddOpsEventTypes(ctx context.Context) error {
	return s.addEventTypes(ctx, webhook.OpsEventTypes)
}

func (s *Store) addEventTypes(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	rows := make([]eventTypeRow, len(names))
	for i, n := range names {
		rows[i] = eventTypeRow{Name: n, CreatedAt: s.now().UTC()}
	}
	if _, err := s.db.NewInsert().Model(&rows).On("CONFLICT (name) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("add event types: %w", err)
	}
	return nil
}

// EventTypes returns the registered event type names, sorted.
func (s *Store) EventTypes(ctx context.Context) (_ []string, err error) {
	defer markUnavailable(&err)
	var names []string
	if err := s.db.NewSelect().Model((*eventTypeRow)(nil)).Column("name").Order("name").Scan(ctx, &names); err != nil {
		return nil, fmt.Errorf("list event types: %w", err)
	}
	return names, nil
}

// EventTypeExists reports whether name is a registered event type.
func (s *Store) EventTypeExists(ctx context.Context, name string) (_ bool, err error) {
	defer markUnavailable(&err)
	ok, err := s.db.NewSelect().Model((*eventTypeRow)(nil)).Where("name = ?", name).Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("event type %q: %w", name, err)
	}
	return ok, nil
}
