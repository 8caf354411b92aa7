package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/secret"
	"github.com/whisperer/whisperer/core/internal/store"
)

// ErrNoKey is Keyring's error on PostgreSQL without security.encryption_keys.
var ErrNoKey = errors.New("security.encryption_keys is required on PostgreSQL: every node reads the same rows, so " +
	"every node needs the same key. Make one with `whisperer keys generate` and give it to every node, e.g. " +
	"WHISPERER_SECURITY_ENCRYPTION_KEYS=<key>")

// KeyFile is where a SQLite database without configured keys keeps its
// key: beside the database, "" for an in-memory one.
func KeyFile(cfg *config.Config) string {
	dsn, err := cfg.Database.DSN()
	if err != nil || cfg.Database.Dialect() != "sqlite" {
		return ""
	}
	path, _, _ := strings.Cut(dsn, "?")
	if path == ":memory:" {
		return ""
	}
	return path + ".key"
}

// Keyring returns the keys that seal hooks' secrets at rest:
// security.encryption_keys; on SQLite without them, the key file beside
// the database, created (0600) on first use. A key file left from before
// keys were configured still opens (last), so its rows can be rotated.
// Only key ids and paths are logged, never a key.
func Keyring(cfg *config.Config, logger *slog.Logger) (*secret.Keyring, error) {
	keys := make([]secret.Key, 0, len(cfg.Security.EncryptionKeys)+1)
	for i, text := range cfg.Security.EncryptionKeys {
		k, err := secret.ParseKey(text)
		if err != nil {
			return nil, fmt.Errorf("security.encryption_keys[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	if cfg.Database.Dialect() == "postgres" {
		if len(keys) == 0 {
			return nil, ErrNoKey
		}
		return secret.NewKeyring(keys...)
	}
	path := KeyFile(cfg)
	switch {
	case path == "" && len(keys) == 0:
		// An in-memory database dies with the process; so can its key.
		k, err := secret.ParseKey(secret.Generate())
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	case len(keys) == 0:
		k, created, err := secret.LoadOrCreateKeyFile(path)
		if err != nil {
			return nil, err
		}
		if created {
			logger.Warn("created an encryption key for secrets at rest; back it up with the database, which is unreadable without it",
				"key_file", path, "key_id", k.ID())
		}
		keys = append(keys, k)
	default:
		if k, err := secret.LoadKeyFile(path); err == nil && !hasKey(keys, k) {
			keys = append(keys, k) // logged by logKeyFileInUse if rows use it
		} else if err != nil && !errors.Is(err, secret.ErrNoKeyFile) {
			return nil, err
		}
	}
	return secret.NewKeyring(keys...)
}

// logKeyFileInUse says when hooks are still sealed under the key file's
// key, which Keyring adds after the configured keys: they need it until
// they are re-sealed. A key file no row uses is not worth a word.
func logKeyFileInUse(ctx context.Context, cfg *config.Config, ring *secret.Keyring, s *store.Store, logger *slog.Logger) error {
	ids := ring.IDs()
	if cfg.Database.Dialect() != "sqlite" || len(cfg.Security.EncryptionKeys) == 0 || len(ids) <= len(cfg.Security.EncryptionKeys) {
		return nil
	}
	id := ids[len(ids)-1]
	n, err := s.CountSealedUnder(ctx, id)
	if err != nil || n == 0 {
		return err
	}
	logger.Info("hooks are sealed under the key file's key, which still decrypts them: `whisperer keys rotate` "+
		"(or the next start) re-seals them; delete the file after", "key_file", KeyFile(cfg), "key_id", id, "hooks", n)
	return nil
}

func hasKey(keys []secret.Key, k secret.Key) bool {
	for _, x := range keys {
		if x.ID() == k.ID() {
			return true
		}
	}
	return false
}

// SealLegacySecrets seals the secrets of hooks written in clear (before
// encryption) or under a key no longer first, in batches, logging
// progress. The server runs it at start, `whisperer migrate` after
// migrating.
func SealLegacySecrets(ctx context.Context, s *store.Store, logger *slog.Logger) error {
	p, err := s.SealSecrets(ctx, sealBatch, func(p store.SealProgress) {
		logger.Info("encrypting hook secrets at rest", "done", p.Done, "total", p.Total)
	})
	if err != nil {
		return err
	}
	if p.Total > 0 {
		logger.Info("hook secrets encrypted at rest", "hooks", p.Done, "changed_meanwhile", p.Skipped)
	}
	if p.URLs > 0 {
		logger.Info("moved target_url credentials into config.auth", "hooks", p.URLs)
	}
	if len(p.Unreadable) > 0 {
		logger.Warn("hooks whose stored secrets cannot be decrypted were left as they are; their events are not sent "+
			"until their owners set a new secret_key (see docs/SECRETS.md)", "hook_ids", p.Unreadable)
	}
	if len(p.URLsKept) > 0 {
		logger.Warn("hooks keep credentials in target_url: without them it is another hook's; delete one of the two "+
			"or set config.auth and a target_url without credentials", "hook_ids", p.URLsKept)
	}
	return nil
}

// sealBatch is how many hooks one sealing transaction rewrites.
const sealBatch = 500
