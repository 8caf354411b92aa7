package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// BenchmarkDeliverNowFanOut is one "async": false publish to 500 hooks on
// a loopback receiver: DeliverNow's claims, attempts and result writes,
// per fan-out. Publishing happens outside the timer.
//
//	go test -run '^$' -bench DeliverNowFanOut -benchtime 10x ./core/internal/delivery/
func BenchmarkDeliverNowFanOut(b *testing.B) {
	for _, backend := range storetest.Backends {
		b.Run(backend, func(b *testing.B) {
			s := storetest.New(b, backend)
			u, _ := storetest.User(b, s, "bench", webhook.RoleAdmin)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(204)
			}))
			defer srv.Close()
			const fanout = 500
			for i := range fanout {
				storetest.Hook(b, s, u.ID, "bench", fmt.Sprintf("%s/%d", srv.URL, i))
			}
			d, err := delivery.New(delivery.Config{AllowNetworks: loopback}, s, countdown.NewRegistry(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer d.Stop(context.Background())
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				pub, err := s.Publish(context.Background(), webhook.PublishRequest{EventType: "bench",
					Payload: json.RawMessage(`{"n":1}`), Hold: time.Hour})
				if err != nil || len(pub.Events) != fanout {
					b.Fatalf("publish: %d events, %v", len(pub.Events), err)
				}
				ids := make([]int64, len(pub.Events))
				for i, ev := range pub.Events {
					ids[i] = ev.ID
				}
				b.StartTimer()
				out, err := d.DeliverNow(context.Background(), ids)
				if err != nil || len(out) != fanout {
					b.Fatalf("DeliverNow: %d outcomes, %v", len(out), err)
				}
			}
		})
	}
}
