package store_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// TestRevocationAfterReconnect: SQLite's data_version is per connection;
// after the store's one connection is replaced, a revocation the CLI made
// must still be seen by the next request, not after the cache's TTL.
func TestRevocationAfterReconnect(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "w.db")
	server := storetest.Open(t, url, store.Options{AuthCacheTTL: time.Hour})
	_, tok := storetest.User(t, server, "alice", webhook.RoleUser)
	if _, err := server.Authenticate(ctx, tok); err != nil { // now cached
		t.Fatal(err)
	}
	cli := storetest.Open(t, url, store.Options{})
	for i := range 3 {
		if err := store.DropSQLiteConn(server); err != nil {
			t.Fatal(err)
		}
		if _, err := server.Authenticate(ctx, tok); err != nil { // cached again, on the new connection
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if err := store.DropSQLiteConn(server); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.RevokeToken(ctx, tok[:8]); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Authenticate(ctx, tok); !errors.Is(err, webhook.ErrUnauthenticated) {
		t.Fatalf("the server accepted a token the CLI had revoked after its connection was replaced: %v", err)
	}
}
