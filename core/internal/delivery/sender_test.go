package delivery_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/goleak"

	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// loopback is the allow list tests need: httptest listens on 127.0.0.1.
var loopback = []string{"127.0.0.0/8", "::1/128"}

func newSender(t *testing.T, cfg delivery.Config) *delivery.Sender {
	t.Helper()
	s, err := delivery.NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func testJob(url string) *webhook.Job {
	return &webhook.Job{
		Event: webhook.Event{
			ID: 7, UUID: "0123456789abcdef0123456789abcdef", WebhookID: 3,
			EventType: "package-created", Payload: json.RawMessage(`{"id":1,"name":"ünïcode"}`),
		},
		Webhook: webhook.Webhook{ID: 3, TargetURL: url, EventType: "package-created"},
	}
}

// receiver is an httptest server recording the last request.
type receiver struct {
	*httptest.Server
	hits   atomic.Int64
	header atomic.Pointer[http.Header]
	body   atomic.Pointer[[]byte]
}

func newReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		hdr := r.Header.Clone()
		rc.header.Store(&hdr)
		rc.body.Store(&b)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func TestSendSignsAndSetsHeaders(t *testing.T) {
	const secret = "s3cr3t-key"
	rc := newReceiver(t, nil)
	s := newSender(t, delivery.Config{AllowNetworks: loopback})
	job := testJob(rc.URL)
	job.Webhook.SecretKey = secret
	job.Webhook.AdditionalHeaders = map[string]string{
		"X-Custom":              "yes",
		"User-Agent":            "custom-agent",
		"content-type":          "text/plain",
		"X-Whisperer-Signature": "sha256=forged",
		"X-Whisperer-Event":     "forged",
		"webhook-id":            "forged",
		"Webhook-Signature":     "v1,forged",
		"Authorization":         "Bearer forged",
		"Host":                  "evil.example",
		"Bad Name":              "x",
		"X-Injected":            "a\r\nX-Evil: 1",
		// Stored before the API refused them: receivers that read "_" as
		// "-" would see a second signature.
		"X_Whisperer_Signature": "sha256=forged",
		"webhook_signature":     "v1,forged",
		"Proxy-Authorization":   "Basic forged",
		"Expect":                "100-continue",
	}
	job.Webhook.Config = map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "alice", "password": "pw:1"}}

	sent := s.Send(context.Background(), job)
	if !sent.Delivered || sent.Attempt.Error != "" || sent.Attempt.Status != 200 {
		t.Fatalf("not delivered: %+v", sent.Attempt)
	}
	body := *rc.body.Load()
	hdr := *rc.header.Load()
	want := webhook.RequestBody(job.Event.EventType, job.Event.UUID, job.Event.Payload)
	if string(body) != string(want) || string(sent.Body) != string(want) {
		t.Fatalf("body = %s, want %s", body, want)
	}

	// dj-whisperer's signature, recomputed independently.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if got, want := hdr.Get("X-Whisperer-Signature"), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("X-Whisperer-Signature = %q, want %q", got, want)
	}
	// Standard Webhooks, verified by its library with the documented key.
	wh, err := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte(secret)))
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, hdr); err != nil {
		t.Errorf("standard webhooks verify: %v (headers %v)", err, hdr)
	}
	raw, _ := standardwebhooks.NewWebhookRaw([]byte(secret))
	if err := raw.Verify(body, hdr); err != nil {
		t.Errorf("standard webhooks raw-key verify: %v", err)
	}

	for name, want := range map[string]string{
		"Content-Type":      "application/json",
		"X-Whisperer-Event": "package-created",
		"Webhook-Id":        job.Event.UUID,
		"X-Custom":          "yes",
		"User-Agent":        "custom-agent",
		"X-Injected":        "",
		"X-Evil":            "",
	} {
		if got := hdr.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if ts := hdr.Get("Webhook-Timestamp"); ts == "" {
		t.Error("no webhook-timestamp")
	}
	if u, p, ok := (&http.Request{Header: hdr}).BasicAuth(); !ok || u != "alice" || p != "pw:1" {
		t.Errorf("basic auth = %q %q %v", u, p, ok)
	}
	if len(hdr.Values("X-Whisperer-Signature")) != 1 || len(hdr.Values("Webhook-Signature")) != 1 {
		t.Errorf("signature headers repeated: %v", hdr)
	}
	for name := range hdr {
		if webhook.ProtectedHeader(name) && hdr.Get(name) != "" && strings.ContainsAny(name, "_") ||
			strings.HasPrefix(name, "Proxy-") || name == "Expect" {
			t.Errorf("protected header %s sent: %q", name, hdr.Get(name))
		}
	}
}

func TestSendWithoutSecret(t *testing.T) {
	rc := newReceiver(t, nil)
	s := newSender(t, delivery.Config{AllowNetworks: loopback})
	if sent := s.Send(context.Background(), testJob(rc.URL)); !sent.Delivered {
		t.Fatalf("not delivered: %+v", sent.Attempt)
	}
	hdr := *rc.header.Load()
	for _, name := range []string{"X-Whisperer-Signature", "Webhook-Signature", "Authorization"} {
		if v := hdr.Get(name); v != "" {
			t.Errorf("%s = %q without a secret", name, v)
		}
	}
	for _, name := range []string{"Webhook-Id", "Webhook-Timestamp"} {
		if hdr.Get(name) == "" {
			t.Errorf("%s missing", name)
		}
	}
}

func TestSendStatuses(t *testing.T) {
	var redirected atomic.Int64
	target := newReceiver(t, func(http.ResponseWriter, *http.Request) { redirected.Add(1) })
	for _, tc := range []struct {
		name      string
		status    int
		delivered bool
		errHas    string
	}{
		{"ok", 200, true, ""},
		{"no content", 204, true, ""},
		{"accepted", 202, true, ""},
		{"server error", 500, false, ""},
		{"not found", 404, false, ""},
		{"redirect", 302, false, "not followed"},
		{"permanent redirect", 308, false, "not followed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.status >= 300 && tc.status < 400 {
					http.Redirect(w, r, target.URL, tc.status)
					return
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, "answer")
			})
			s := newSender(t, delivery.Config{AllowNetworks: loopback})
			sent := s.Send(context.Background(), testJob(rc.URL))
			if sent.Delivered != tc.delivered || sent.Attempt.Status != tc.status {
				t.Fatalf("delivered %v status %d, want %v %d (%+v)", sent.Delivered, sent.Attempt.Status, tc.delivered, tc.status, sent.Attempt)
			}
			if !strings.Contains(sent.Attempt.Error, tc.errHas) {
				t.Errorf("error %q does not contain %q", sent.Attempt.Error, tc.errHas)
			}
		})
	}
	if n := redirected.Load(); n != 0 {
		t.Errorf("redirect followed %d times", n)
	}
}

func TestSendFaults(t *testing.T) {
	// done releases handlers that would otherwise hang past the test.
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
	slowBody := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	endless := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		chunk := []byte(strings.Repeat("y", 4096))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	reset := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		conn.(*net.TCPConn).SetLinger(0) // close with RST
		conn.Close()
	}
	truncated := func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
		buf.Flush()
		conn.Close()
	}

	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		status  int
		errHas  []string
		bodyLen int
		ok      bool
	}{
		{name: "hanging receiver", handler: hang, errHas: []string{"timeout after"}},
		{name: "slow body", handler: slowBody, status: 200, errHas: []string{"read response body", "timeout"}},
		{name: "endless body is capped", handler: endless, status: 200, bodyLen: 1024, ok: true},
		{name: "connection reset", handler: reset, errHas: []string{""}},
		{name: "truncated body", handler: truncated, status: 200, errHas: []string{"read response body", "unexpected EOF"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, tc.handler)
			s := newSender(t, delivery.Config{AllowNetworks: loopback,
				ConnectTimeout: time.Second, ReadTimeout: 300 * time.Millisecond, MaxResponseBytes: 1024})
			start := time.Now()
			sent := s.Send(context.Background(), testJob(rc.URL))
			t.Logf("attempt: status %d, error %q", sent.Attempt.Status, sent.Attempt.Error)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("attempt took %s, not bounded by the timeouts", d)
			}
			if sent.Delivered != tc.ok || sent.Attempt.Status != tc.status {
				t.Fatalf("delivered %v status %d, want %v %d (%+v)", sent.Delivered, sent.Attempt.Status, tc.ok, tc.status, sent.Attempt)
			}
			if !tc.ok && sent.Attempt.Error == "" {
				t.Error("failed attempt without an error")
			}
			for _, s := range tc.errHas {
				if !strings.Contains(sent.Attempt.Error, s) {
					t.Errorf("error %q does not contain %q", sent.Attempt.Error, s)
				}
			}
			if tc.bodyLen > 0 && len(sent.Attempt.Body) != tc.bodyLen {
				t.Errorf("kept %d body bytes, want %d", len(sent.Attempt.Body), tc.bodyLen)
			}
			if sent.Attempt.Duration <= 0 {
				t.Error("no duration recorded")
			}
		})
	}
}

func TestSendRefusedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := newSender(t, delivery.Config{AllowNetworks: loopback})
	sent := s.Send(context.Background(), testJob("http://"+addr+"/"))
	if sent.Delivered || !strings.Contains(sent.Attempt.Error, "connection refused") {
		t.Fatalf("attempt = %+v, want connection refused", sent.Attempt)
	}
}

func TestSendDNSFailure(t *testing.T) {
	// A resolver with no server: the lookup fails on this machine, without
	// a query to the system's name server (tests stay on loopback).
	noDNS := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no name server in tests")
	}}
	s := newSender(t, delivery.Config{ConnectTimeout: 2 * time.Second, Resolver: noDNS})
	sent := s.Send(context.Background(), testJob("http://whisperer-test.invalid/"))
	if sent.Delivered || sent.Attempt.Error == "" || sent.Attempt.Status != 0 {
		t.Fatalf("attempt = %+v, want a DNS error", sent.Attempt)
	}
	t.Logf("attempt error: %q", sent.Attempt.Error)
	if !strings.Contains(sent.Attempt.Error, "whisperer-test.invalid") {
		t.Errorf("error %q does not name the host", sent.Attempt.Error)
	}
}

func TestSendRefusesBlockedNetworks(t *testing.T) {
	rc := newReceiver(t, nil)
	port := rc.URL[strings.LastIndexByte(rc.URL, ':'):]
	blocked := newSender(t, delivery.Config{})
	for _, url := range []string{rc.URL, "http://localhost" + port + "/", "http://[::ffff:127.0.0.1]" + port + "/"} {
		sent := blocked.Send(context.Background(), testJob(url))
		if sent.Delivered || !strings.Contains(sent.Attempt.Error, "is in a blocked network (allow it with delivery.allow_networks)") ||
			!strings.HasPrefix(sent.Attempt.Error, "refused: address ") {
			t.Errorf("%s: attempt = %+v, want refused", url, sent.Attempt)
		}
	}
	if n := rc.hits.Load(); n != 0 {
		t.Fatalf("blocked receiver was hit %d times", n)
	}
	allowed := newSender(t, delivery.Config{AllowNetworks: []string{"127.0.0.0/8"}})
	if sent := allowed.Send(context.Background(), testJob(rc.URL)); !sent.Delivered {
		t.Fatalf("allowed network refused: %+v", sent.Attempt)
	}
}

func TestSendBadTarget(t *testing.T) {
	s := newSender(t, delivery.Config{})
	for _, url := range []string{"ftp://example.com/", "://nope", ""} {
		if sent := s.Send(context.Background(), testJob(url)); sent.Delivered || sent.Attempt.Error == "" {
			t.Errorf("%q: attempt = %+v, want an error", url, sent.Attempt)
		}
	}
}

// BenchmarkSend measures one signed attempt against a local receiver.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(204)
	}))
	defer srv.Close()
	s, err := delivery.NewSender(delivery.Config{AllowNetworks: loopback})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	job := testJob(srv.URL)
	job.Webhook.SecretKey = "secret"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if sent := s.Send(context.Background(), job); !sent.Delivered {
				b.Fatal(sent.Attempt.Error)
			}
		}
	})
}

// During a secret rotation's overlap, webhook-signature carries both
// signatures and the Standard Webhooks library accepts the request with
// either secret; X-Whisperer-Signature uses the new one. After the overlap
// only the new secret verifies.
func TestSendSignsWithBothSecretsDuringRotation(t *testing.T) {
	const oldSecret, newSecret = "old-secret-1", "new-secret-2"
	rc := newReceiver(t, nil)
	s := newSender(t, delivery.Config{AllowNetworks: loopback})
	verify := func(secret string, hdr http.Header, body []byte) error {
		wh, err := standardwebhooks.NewWebhookRaw([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return wh.Verify(body, hdr)
	}
	send := func(until time.Time) (http.Header, []byte) {
		job := testJob(rc.URL)
		job.Webhook.SecretKey, job.Webhook.PreviousSecretKey, job.Webhook.PreviousSecretUntil = newSecret, oldSecret, &until
		if sent := s.Send(context.Background(), job); !sent.Delivered {
			t.Fatalf("not delivered: %+v", sent.Attempt)
		}
		return *rc.header.Load(), *rc.body.Load()
	}

	hdr, body := send(time.Now().Add(time.Hour))
	if sigs := strings.Fields(hdr.Get("Webhook-Signature")); len(sigs) != 2 || !strings.HasPrefix(sigs[1], "v1,") {
		t.Fatalf("webhook-signature = %q, want two v1 signatures", hdr.Get("Webhook-Signature"))
	}
	for _, secret := range []string{oldSecret, newSecret} {
		if err := verify(secret, hdr, body); err != nil {
			t.Errorf("during the overlap, %s does not verify: %v", secret, err)
		}
	}
	mac := hmac.New(sha256.New, []byte(newSecret))
	mac.Write(body)
	if got, want := hdr.Get("X-Whisperer-Signature"), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("X-Whisperer-Signature = %q, want the new secret's %q", got, want)
	}

	hdr, body = send(time.Now().Add(-time.Second))
	if err := verify(newSecret, hdr, body); err != nil {
		t.Errorf("after the overlap, the new secret does not verify: %v", err)
	}
	if err := verify(oldSecret, hdr, body); err == nil {
		t.Error("after the overlap, the old secret still verifies")
	}
}

// The sender talks to the transport without an http.Client; what a
// Client did that reaches a receiver or an attempt's text is kept:
// credentials in the target URL are sent as basic authentication (unless
// the hook's own auth set the header), and an http:// server behind an
// https:// target is named as such.
func TestSendClientBehaviourKept(t *testing.T) {
	rc := newReceiver(t, nil)
	s := newSender(t, delivery.Config{AllowNetworks: loopback})
	withUser := strings.Replace(rc.URL, "http://", "http://ann:pw@", 1)
	if sent := s.Send(context.Background(), testJob(withUser)); !sent.Delivered {
		t.Fatalf("not delivered: %+v", sent.Attempt)
	}
	if got, want := (*rc.header.Load()).Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte("ann:pw")); got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
	job := testJob(withUser)
	job.Webhook.Config = map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "bob", "password": "x"}}
	if sent := s.Send(context.Background(), job); !sent.Delivered {
		t.Fatalf("not delivered: %+v", sent.Attempt)
	}
	if got, want := (*rc.header.Load()).Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte("bob:x")); got != want {
		t.Errorf("with the hook's auth: Authorization %q, want %q", got, want)
	}

	sent := s.Send(context.Background(), testJob(strings.Replace(rc.URL, "http://", "https://", 1)))
	if sent.Delivered || sent.Attempt.Class != webhook.ClassTLS || !strings.Contains(sent.Attempt.Error, http.ErrSchemeMismatch.Error()) {
		t.Errorf("https to an http server: %+v", sent.Attempt)
	}
}
