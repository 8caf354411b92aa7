package listen_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/whisperer/whisperer/cmd/whisperer/internal/listen"
	"github.com/whisperer/whisperer/internal/testlog"
)

const body = `{"event":{"type":"package-created","uuid":"0f5c0c4f2f3e4a5b8c9d0e1f2a3b4c5d"},"payload":{"id":1,"name":"box"}}`

// signed returns Whisperer's headers for body, signed with secret the way
// core/internal/delivery documents it.
func signed(t *testing.T, secret string, ts time.Time) http.Header {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	wh, err := standardwebhooks.NewWebhookRaw([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign("0f5c0c4f2f3e4a5b8c9d0e1f2a3b4c5d", ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("X-Whisperer-Event", "package-created")
	h.Set("X-Whisperer-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	h.Set("webhook-id", "0f5c0c4f2f3e4a5b8c9d0e1f2a3b4c5d")
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	return h
}

func TestVerify(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name, secret string
		header       http.Header
		whisperer    string
		standard     string
	}{
		{"both verify", "s3cret", signed(t, "s3cret", now), "verified", "verified"},
		{"wrong secret", "other", signed(t, "s3cret", now), "invalid", "invalid"},
		{"no secret given", "", signed(t, "s3cret", now), "unchecked", "unchecked"},
		{"stale timestamp", "s3cret", signed(t, "s3cret", now.Add(-time.Hour)), "verified", "invalid: message timestamp too old"},
		{"hook without secret", "s3cret", http.Header{"Webhook-Id": {"x"}}, "missing", "missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, s := listen.Verify(tc.secret, []byte(body), tc.header)
			if !strings.HasPrefix(string(w), tc.whisperer) || !strings.HasPrefix(string(s), tc.standard) {
				t.Errorf("verdicts %q, %q; want %q, %q", w, s, tc.whisperer, tc.standard)
			}
		})
	}
}

// The receiver prints what it got, fails the share asked for, counts
// repeats of one uuid and shuts down when its context ends.
func TestReceiver(t *testing.T) {
	var (
		out  testlog.Buffer
		mu   sync.Mutex
		seen []listen.Delivery
		n    int
	)
	r, err := listen.New(listen.Config{
		Secret: "s3cret", FailRate: 0.5,
		// Fail every other request, deterministically.
		Rand:       func() float64 { mu.Lock(); defer mu.Unlock(); n++; return float64((n+1)%2) * 0.9 },
		OnDelivery: func(d listen.Delivery) { mu.Lock(); seen = append(seen, d); mu.Unlock() },
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- listen.Serve(ctx, ln, r) }()

	var statuses []int
	for range 2 {
		req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/", strings.NewReader(body))
		req.Header = signed(t, "s3cret", time.Now())
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if statuses[0] != 500 || statuses[1] != 200 {
		t.Errorf("statuses %v, want [500 200]", statuses)
	}
	if got, failed := r.Counts(); got != 2 || failed != 1 {
		t.Errorf("counts %d, %d; want 2, 1", got, failed)
	}
	if len(seen) != 2 || seen[1].Seen != 2 || !seen[0].Failed || seen[1].Standard != listen.Verified {
		t.Errorf("deliveries %+v", seen)
	}
	printed := out.String()
	for _, want := range []string{
		"package-created  0f5c0c4f2f3e4a5b8c9d0e1f2a3b4c5d  → 500, failed on purpose",
		" (request 2 for this event)  → 200",
		"X-Whisperer-Signature: verified", "webhook-signature: verified",
		"payload: {\n    \"id\": 1,\n    \"name\": \"box\"\n  }",
	} {
		if !strings.Contains(printed, want) {
			t.Errorf("output lacks %q:\n%s", want, printed)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := listen.New(listen.Config{FailRate: 1.5}, nil); err == nil {
		t.Error("fail rate 1.5 accepted")
	}
}
