package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Web console sessions (docs/CONSOLE.md): made by signing in with an API
// token, ended by sign-out, expiry or the token's revocation.

// maxSessionsPerToken bounds the sessions one token keeps: signing in again
// beyond it ends the oldest, so a token cannot fill the table.
const maxSessionsPerToken = 20

type consoleSessionRow struct {
	bun.BaseModel `bun:"table:console_sessions"`
	IDHash        string `bun:"id_hash,pk"`
	TokenID       int64  `bun:"token_id"`
	UserID        int64  `bun:"user_id"`
	CSRF          string `bun:"csrf"`
	CreatedAt     int64  `bun:"created_at"`
	ExpiresAt     int64  `bun:"expires_at"`
}

// CreateSession starts a console session for the owner of the unrevoked
// API token key, valid for ttl. It returns the session id, which only the
// cookie keeps (the database has its SHA-256), and the session. An unknown
// or revoked key is webhook.ErrUnauthenticated. Expired sessions, and this
// token's beyond the newest maxSessionsPerToken, are deleted on the way.
func (s *Store) CreateSession(ctx context.Context, key string, ttl time.Duration) (string, webhook.Session, error) {
	id, csrf, err := newSessionSecrets()
	if err != nil {
		return "", webhook.Session{}, err
	}
	now := s.now().UTC()
	var sess webhook.Session
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var tok tokenRow
		if err := tx.NewSelect().Model(&tok).Where("key_hash = ?", hashKey(key)).Where("revoked_at IS NULL").Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return webhook.ErrUnauthenticated
			}
			return err
		}
		var u userRow
		if err := tx.NewSelect().Model(&u).Where("id = ?", tok.UserID).Scan(ctx); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*consoleSessionRow)(nil)).Where("expires_at <= ?", micros(now)).Exec(ctx); err != nil {
			return err
		}
		row := &consoleSessionRow{IDHash: hashKey(id), TokenID: tok.ID, UserID: tok.UserID, CSRF: csrf,
			CreatedAt: micros(now), ExpiresAt: micros(now.Add(ttl))}
		if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
			return err
		}
		keep := tx.NewSelect().Model((*consoleSessionRow)(nil)).Column("id_hash").Where("token_id = ?", tok.ID).
			OrderExpr("created_at DESC, id_hash").Limit(maxSessionsPerToken)
		if _, err := tx.NewDelete().Model((*consoleSessionRow)(nil)).Where("token_id = ?", tok.ID).
			Where("id_hash NOT IN (?)", keep).Exec(ctx); err != nil {
			return err
		}
		sess = webhook.Session{User: u.domain(), CSRF: csrf, ExpiresAt: fromMicros(row.ExpiresAt)}
		return nil
	})
	if err := sessionErr(err, "create console session"); err != nil {
		return "", webhook.Session{}, err
	}
	return id, sess, nil
}

// newSessionSecrets returns a new session's id (only the cookie keeps it;
// the database has its SHA-256) and its CSRF token, 32 random bytes each.
func newSessionSecrets() (id, csrf string, err error) {
	if id, err = randomHex(32); err != nil {
		return "", "", err
	}
	csrf, err = randomHex(32)
	return id, csrf, err
}

// sessionErr passes nil and webhook.ErrUnauthenticated on and marks any
// other error of making a session (what) the database's failure.
func sessionErr(err error, what string) error {
	if err == nil || errors.Is(err, webhook.ErrUnauthenticated) {
		return err
	}
	return fmt.Errorf("%w: %s: %v", webhook.ErrUnavailable, what, err)
}

// Session returns the live session whose id is id: not expired, not
// signed out, and its token not revoked. Anything else is
// webhook.ErrUnauthenticated.
func (s *Store) Session(ctx context.Context, id string) (webhook.Session, error) {
	var out struct {
		userRow
		CSRF      string `bun:"csrf"`
		ExpiresAt int64  `bun:"expires_at"`
	}
	err := s.db.NewSelect().TableExpr("console_sessions AS cs").
		Join("JOIN api_tokens AS t ON t.id = cs.token_id").
		Join("JOIN users AS u ON u.id = cs.user_id").
		ColumnExpr("u.id, u.username, u.role, u.created_at, cs.csrf, cs.expires_at").
		Where("cs.id_hash = ?", hashKey(id)).Where("cs.expires_at > ?", micros(s.now())).
		Where("t.revoked_at IS NULL").
		Scan(ctx, &out)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return webhook.Session{}, webhook.ErrUnauthenticated
		}
		return webhook.Session{}, fmt.Errorf("%w: console session: %v", webhook.ErrUnavailable, err)
	}
	return webhook.Session{User: out.userRow.domain(), CSRF: out.CSRF, ExpiresAt: fromMicros(out.ExpiresAt)}, nil
}

// DeleteSession ends the session whose id is id (sign-out). Ending one
// that does not exist is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.NewDelete().Model((*consoleSessionRow)(nil)).Where("id_hash = ?", hashKey(id)).Exec(ctx); err != nil {
		return fmt.Errorf("%w: end console session: %v", webhook.ErrUnavailable, err)
	}
	return nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
