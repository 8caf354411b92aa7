package publish_test

import (
	"encoding/json"
	"testing"

	"github.com/whisperer/whisperer/core/internal/publish"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// BenchmarkConcurrentPublishes publishes from 64 goroutines per CPU at
// once through a batcher (limit 256, as the server's) on each backend:
// the group commit's throughput under contention.
func BenchmarkConcurrentPublishes(b *testing.B) {
	for _, backend := range storetest.Backends {
		b.Run(backend, func(b *testing.B) {
			s := storetest.New(b, backend)
			u, _ := storetest.User(b, s, "p", webhook.RolePublisher)
			storetest.Hook(b, s, u.ID, "e", "https://a.example/")
			bt := publish.New(s, 256)
			if err := bt.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			defer bt.Stop(b.Context())
			req := webhook.PublishRequest{EventType: "e", Payload: json.RawMessage(`{"n":1}`)}
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := bt.Publish(b.Context(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
