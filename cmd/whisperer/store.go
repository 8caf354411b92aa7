package main

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/app"
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

// withStore loads the configuration, opens (and migrates) the database,
// runs fn and closes it.
func withStore(ctx context.Context, e env, fs *pflag.FlagSet, fn func(storeCLI) error) error {
	cfg, err := loadConfig(e, fs)
	if err != nil {
		return err
	}
	s, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}
