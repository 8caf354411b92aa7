// Package apptest gives the CLI's tests (cmd/whisperer), which live
// outside core/ and so cannot import core/internal, the store and the
// fixtures they seed and inspect databases with. It is test support: the
// names are aliases of the internal ones, with no promise of stability,
// and no program imports it (TestOnlyTestsImportApptest holds that).
package apptest

import (
	"github.com/whisperer/whisperer/core/internal/secret"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The store.
type (
	Store   = store.Store
	Options = store.Options
)

const (
	SQLite   = store.SQLite
	Postgres = store.Postgres
)

var Open = store.Open

// The shared fixtures (core/internal/store/storetest).
const (
	Key            = storetest.Key
	LegacySecret   = storetest.LegacySecret
	LegacyPassword = storetest.LegacyPassword
	LegacyHeader   = storetest.LegacyHeader
)

var (
	Backends  = storetest.Backends
	URL       = storetest.URL
	Keyring   = storetest.Keyring
	User      = storetest.User
	Hook      = storetest.Hook
	Attempted = storetest.Attempted
	Legacy    = storetest.Legacy
)

// The domain types and errors the tests compare with.
type (
	Webhook = webhook.Webhook
	Event   = webhook.Event
	Scope   = webhook.Scope
)

const (
	RoleUser       = webhook.RoleUser
	StatePending   = webhook.StatePending
	StateDelivered = webhook.StateDelivered
	StateGivenUp   = webhook.StateGivenUp
)

var (
	ErrNotFound        = webhook.ErrNotFound
	ErrUnauthenticated = webhook.ErrUnauthenticated
	ParseKeyring       = secret.ParseKeyring
)
