package store_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// BenchmarkPublishLeased is the publish batcher's write at saturation: a
// batch of 32 publishes to one hook, every row leased to the node. One op
// is one event (ns/op is per event; the batch is b.N/32 statements' worth).
func BenchmarkPublishLeased(b *testing.B) {
	for _, backend := range storetest.Backends {
		b.Run(backend, func(b *testing.B) {
			s := storetest.New(b, backend)
			u, _ := storetest.User(b, s, "a", webhook.RolePublisher)
			storetest.Hook(b, s, u.ID, "e", "https://a.example/")
			const batch = 32
			reqs := make([]webhook.PublishRequest, batch)
			for i := range reqs {
				reqs[i] = webhook.PublishRequest{EventType: "e", PublisherID: u.ID,
					Payload: json.RawMessage(fmt.Sprintf(`{"n": %d, "name": "order.created", "amount": 1250}`, i))}
			}
			lease := webhook.PublishLease{Owner: "n1", Lease: time.Minute, Limit: batch}
			b.ResetTimer()
			for n := 0; n < b.N; n += batch {
				_, errs := s.PublishLeased(ctx, reqs, lease)
				if errs[0] != nil {
					b.Fatal(errs[0])
				}
			}
		})
	}
}
