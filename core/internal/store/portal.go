package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Tenant portal codes and sessions (docs/CONSOLE.md): a one-time code,
// stored by its hash, is exchanged once for a session limited to one
// user and a set of capabilities.

type portalCodeRow struct {
	bun.BaseModel `bun:"table:portal_codes"`
	CodeHash      string `bun:"code_hash,pk"`
	UserID        int64  `bun:"user_id"`
	Capabilities  string `bun:"capabilities"`
	SessionTTLus  int64  `bun:"session_ttl_us"`
	CreatedAt     int64  `bun:"created_at"`
	ExpiresAt     int64  `bun:"expires_at"`
}

type portalSessionRow struct {
	bun.BaseModel `bun:"table:portal_sessions"`
	IDHash        string `bun:"id_hash,pk"`
	UserID        int64  `bun:"user_id"`
	Capabilities  string `bun:"capabilities"`
	CSRF          string `bun:"csrf"`
	CreatedAt     int64  `bun:"created_at"`
	ExpiresAt     int64  `bun:"expires_at"`
}

// PortalCodeTTL is how long a portal code may wait to be opened: at most
// this, and never longer than the session it opens.
const PortalCodeTTL = 5 * time.Minute

// CreatePortalCode makes a one-time code for a portal session of the user
// named username with caps, lasting ttl once opened. It returns the code
// (only its hash is stored) and when it stops working. An unknown user is
// webhook.ErrNotFound. Expired codes and sessions are deleted on the way.
func (s *Store) CreatePortalCode(ctx context.Context, username string, caps []string, ttl time.Duration) (webhook.User, string, time.Time, error) {
	code, err := randomHex(32)
	if err != nil {
		return webhook.User{}, "", time.Time{}, err
	}
	now := s.now().UTC()
	expires := now.Add(min(ttl, PortalCodeTTL))
	var u userRow
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(&u).Where("username = ?", username).Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return webhook.ErrNotFound
			}
			return err
		}
		for _, m := range []any{(*portalCodeRow)(nil), (*portalSessionRow)(nil)} {
			if _, err := tx.NewDelete().Model(m).Where("expires_at <= ?", micros(now)).Exec(ctx); err != nil {
				return err
			}
		}
		_, err := tx.NewInsert().Model(&portalCodeRow{CodeHash: hashKey(code), UserID: u.ID, Capabilities: strings.Join(caps, ","),
			SessionTTLus: ttl.Microseconds(), CreatedAt: micros(now), ExpiresAt: micros(expires)}).Exec(ctx)
		return err
	})
	switch {
	case errors.Is(err, webhook.ErrNotFound):
		return webhook.User{}, "", time.Time{}, err
	case err != nil:
		return webhook.User{}, "", time.Time{}, fmt.Errorf("%w: create portal code: %v", webhook.ErrUnavailable, err)
	}
	return u.domain(), code, expires, nil
}

// RedeemPortalCode exchanges a live code for a portal session, once: the
// code is deleted in the same transaction, and of two concurrent
// exchanges only the one that deleted it gets a session. It returns the
// session id (only its hash is stored). A used, expired or unknown code
// is webhook.ErrUnauthenticated.
func (s *Store) RedeemPortalCode(ctx context.Context, code string) (string, webhook.Session, error) {
	id, csrf, err := newSessionSecrets()
	if err != nil {
		return "", webhook.Session{}, err
	}
	now := s.now().UTC()
	var sess webhook.Session
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var c portalCodeRow
		if err := tx.NewSelect().Model(&c).Where("code_hash = ?", hashKey(code)).Where("expires_at > ?", micros(now)).Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return webhook.ErrUnauthenticated
			}
			return err
		}
		res, err := tx.NewDelete().Model((*portalCodeRow)(nil)).Where("code_hash = ?", c.CodeHash).Exec(ctx)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return webhook.ErrUnauthenticated // another exchange took it
		}
		row := &portalSessionRow{IDHash: hashKey(id), UserID: c.UserID, Capabilities: c.Capabilities, CSRF: csrf,
			CreatedAt: micros(now), ExpiresAt: micros(now.Add(time.Duration(c.SessionTTLus) * time.Microsecond))}
		if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
			return err
		}
		var u userRow
		if err := tx.NewSelect().Model(&u).Where("id = ?", c.UserID).Scan(ctx); err != nil {
			return err
		}
		sess = portalSession(u, row)
		return nil
	})
	if err := sessionErr(err, "redeem portal code"); err != nil {
		return "", webhook.Session{}, err
	}
	return id, sess, nil
}

// PortalSession returns the live portal session whose id is id; anything
// else is webhook.ErrUnauthenticated.
func (s *Store) PortalSession(ctx context.Context, id string) (webhook.Session, error) {
	var row portalSessionRow
	err := s.db.NewSelect().Model(&row).Where("id_hash = ?", hashKey(id)).Where("expires_at > ?", micros(s.now())).Scan(ctx)
	if err == nil {
		var u userRow
		if err = s.db.NewSelect().Model(&u).Where("id = ?", row.UserID).Scan(ctx); err == nil {
			return portalSession(u, &row), nil
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return webhook.Session{}, webhook.ErrUnauthenticated
	}
	return webhook.Session{}, fmt.Errorf("%w: portal session: %v", webhook.ErrUnavailable, err)
}

// DeletePortalSession ends a portal session.
func (s *Store) DeletePortalSession(ctx context.Context, id string) error {
	if _, err := s.db.NewDelete().Model((*portalSessionRow)(nil)).Where("id_hash = ?", hashKey(id)).Exec(ctx); err != nil {
		return fmt.Errorf("%w: end portal session: %v", webhook.ErrUnavailable, err)
	}
	return nil
}

// portalSession is a portal's session: always as a plain user, whatever
// the user's role, so that a portal never carries an admin's reach.
func portalSession(u userRow, row *portalSessionRow) webhook.Session {
	user := u.domain()
	user.Role = webhook.RoleUser
	return webhook.Session{User: user, CSRF: row.CSRF, ExpiresAt: fromMicros(row.ExpiresAt), Portal: true,
		Capabilities: strings.Split(row.Capabilities, ",")}
}
