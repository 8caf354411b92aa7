package console_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// TestScreenshots saves the console's pages as docs/console/*.png (the
// README and CONSOLE.md show them), from a node with sample data, in
// headless chromium at 1280×800 and the events list at 375 px wide. It
// runs only with WHISPERER_TEST_SCREENSHOTS=1 (scripts/screenshots.sh): it
// writes into the repository.
func TestScreenshots(t *testing.T) {
	if os.Getenv("WHISPERER_TEST_SCREENSHOTS") != "1" {
		t.Skip("WHISPERER_TEST_SCREENSHOTS=1 saves docs/console/*.png (scripts/screenshots.sh)")
	}
	out := filepath.Join("..", "..", "..", "docs", "console")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	c := newChrome(t)
	n := startNode(t)
	ctx := context.Background()

	// Sample data: hooks of two users with a day of requests (the hooks
	// list's success column), events in every state with their attempts,
	// and an hour of delivery rollups and queue lag samples for the
	// overview.
	for _, h := range []struct {
		user                int64
		evType              string
		target              string
		inactive            bool
		requests, delivered int
	}{
		{n.alice.ID, "order.created", "https://api.acme.example/webhooks/orders", false, 1240, 1236},
		{n.alice.ID, "payment.succeeded", "https://hooks.acme.example/payments", false, 310, 262},
		{n.bob.ID, "order.created", "https://crm.globex.example/in/orders", false, 1240, 1240},
		{n.bob.ID, "customer.updated", "https://crm.globex.example/in/customers", true, 0, 0},
	} {
		hk := storetest.Hook(t, n.Store, h.user, h.evType, h.target)
		if h.inactive {
			if _, err := n.Store.DB().ExecContext(ctx, `UPDATE webhooks SET is_active = ? WHERE id = ?`, false, hk.ID); err != nil {
				t.Fatal(err)
			}
		}
		if h.requests > 0 {
			if _, err := n.Store.DB().ExecContext(ctx, `INSERT INTO hook_rollups (webhook_id, hour, attempts, delivered) VALUES (?, ?, ?, ?)`,
				hk.ID, time.Now().Unix()/3600, h.requests, h.delivered); err != nil {
				t.Fatal(err)
			}
		}
	}
	var event int64
	for i := range 12 {
		payload := fmt.Sprintf(`{"order_id": "ord_%04d", "total": %d.90, "currency": "EUR", "items": %d}`, 1000+i, 20+i*7, 1+i%4)
		switch i % 4 {
		case 0, 1:
			n.attempted(t, "order.created", payload, webhook.StateDelivered, 200, `{"ok":true}`, "")
		case 2:
			n.attempted(t, "payment.succeeded", fmt.Sprintf(`{"payment_id": "pay_%04d", "amount": %d00}`, i, 10+i), webhook.StatePending, 503, "Service Unavailable", "status 503")
		case 3:
			evs := n.attempted(t, "order.created", payload, webhook.StateGivenUp, 500, `{"error":"database timeout"}`, "status 500")
			event = evs[0].ID
		}
	}
	now := time.Now().Unix() / 60
	for m := now - 59; m <= now; m++ {
		k := m % 60
		attempts := 40 + (k*37)%55
		failed := (k * 13) % 7
		givenUp := int64(0)
		if k%17 == 0 {
			givenUp = 2
		}
		for _, u := range []int64{n.alice.ID, n.bob.ID} {
			if _, err := n.Store.DB().ExecContext(ctx, `INSERT INTO delivery_rollups (user_id, minute, attempts, delivered, failed, given_up) VALUES (?, ?, ?, ?, ?, ?)`,
				u, m, attempts, attempts-failed-givenUp, failed, givenUp); err != nil {
				t.Fatal(err)
			}
		}
		// The queue's lag sample (user 0, as Store.SampleQueueLag writes
		// it, over the node's own sample): a backlog that builds up and
		// drains.
		i := m - (now - 59)
		lag := max(0, 20-((i-25)*(i-25))/25) * 150_000
		if _, err := n.Store.DB().ExecContext(ctx, `INSERT INTO delivery_rollups (user_id, minute, attempts, delivered, failed, given_up, queue_lag_us) VALUES (0, ?, 0, 0, 0, 0, ?)
			ON CONFLICT (user_id, minute) DO UPDATE SET queue_lag_us = excluded.queue_lag_us`,
			m, lag); err != nil {
			t.Fatal(err)
		}
	}

	// shot saves the viewport, or with full the whole page.
	shot := func(name string, full ...bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		capture := chromedp.CaptureScreenshot()
		if len(full) > 0 && full[0] {
			capture = chromedp.FullScreenshot(100) // 100: PNG
		}
		png, err := chromedp.Run(ctx, capture)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if len(png) > 200<<10 {
			t.Errorf("%s.png is %d KiB, over 200", name, len(png)>>10)
		}
		if err := os.WriteFile(filepath.Join(out, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s.png: %d KiB", name, len(png)>>10)
	}
	visit := func(path, waitID string) {
		t.Helper()
		c.do(t, "open "+path, chromedp.Navigate(n.url+path), chromedp.WaitVisible(chromedp.ID(waitID)))
	}
	c.do(t, "viewport", chromedp.EmulateViewport(1280, 800))
	visit("/sign-in", "token")
	shot("signin")
	c.signIn(t, n.url, n.rootKey)
	visit("/overview", "main")
	shot("overview", true) // down to the queue lag chart
	visit("/hooks", "hooks")
	shot("hooks")
	visit("/hooks/new", "main")
	shot("hook-form")
	visit("/events", "events")
	shot("events")
	visit("/events/"+strconv.FormatInt(event, 10), "attempts")
	shot("event")
	c.do(t, "375 px", chromedp.EmulateViewport(375, 800))
	visit("/events", "events")
	shot("events-mobile")
}
