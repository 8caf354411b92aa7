package main

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/store"
	"github.com/whisperer/whisperer/core/webhook"
)

// storeCLI is what the operator verbs need of the store.
type storeCLI interface {
	CreateUser(ctx context.Context, username string, role webhook.Role) (webhook.User, error)
	UserByName(ctx context.Context, username string) (webhook.User, error)
	CreateToken(ctx context.Context, userID int64) (string, error)
	RevokeToken(ctx context.Context, keyOrPrefix string) (int64, error)
	EventTypes(ctx context.Context) ([]string, error)
	AddEventTypes(ctx context.Context, names ...string) error
	RedeliverFailed(ctx context.Context, sc webhook.Scope, f webhook.RedeliverFilter) (int64, error)
}

// withStore is withDB for the verbs that need only storeCLI.
func withStore(ctx context.Context, e env, fs *pflag.FlagSet, fn func(storeCLI) error) error {
	return withDB(ctx, e, fs, func(s *store.Store) error { return fn(s) })
}
