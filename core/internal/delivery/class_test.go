package delivery_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Every failed attempt carries the class of its failure, which is all a
// publisher learns of another user's hook; every receiver is on loopback.
func TestSendErrorClass(t *testing.T) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if code == http.StatusFound {
				w.Header().Set("Location", "http://10.0.0.1/")
			}
			w.WriteHeader(code)
		}
	}
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
	reset := func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	}
	truncated := func(w http.ResponseWriter, r *http.Request) {
		if conn, buf, err := w.(http.Hijacker).Hijack(); err == nil {
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
			buf.Flush()
			conn.Close()
		}
	}
	plain := newReceiver(t, status(200))
	untrusted := httptest.NewTLSServer(status(200)) // a certificate nobody trusts
	t.Cleanup(untrusted.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()

	for _, tc := range []struct {
		name  string
		url   string // or handler
		h     http.HandlerFunc
		allow []string
		want  webhook.ErrorClass
	}{
		{name: "delivered", h: status(200), want: ""},
		{name: "server error", h: status(500), want: webhook.ClassHTTP},
		{name: "not found", h: status(404), want: webhook.ClassHTTP},
		{name: "redirect", h: status(http.StatusFound), want: webhook.ClassHTTP},
		{name: "hanging", h: hang, want: webhook.ClassTimeout},
		{name: "reset", h: reset, want: webhook.ClassConnection},
		{name: "truncated body", h: truncated, want: webhook.ClassConnection},
		{name: "closed port", url: closed, want: webhook.ClassRefused},
		{name: "blocked by the guard", url: plain.URL, allow: []string{}, want: webhook.ClassRefused},
		{name: "untrusted certificate", url: untrusted.URL, want: webhook.ClassTLS},
		{name: "https to plain http", url: strings.Replace(plain.URL, "http:", "https:", 1), want: webhook.ClassTLS},
		{name: "bad scheme", url: "ftp://127.0.0.1/", want: webhook.ClassInvalidTarget},
		{name: "bad url", url: "http://[::1", want: webhook.ClassInvalidTarget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			if tc.h != nil {
				url = newReceiver(t, tc.h).URL
			}
			allow := loopback
			if tc.allow != nil {
				allow = tc.allow
			}
			s := newSender(t, delivery.Config{AllowNetworks: allow, ConnectTimeout: time.Second, ReadTimeout: 200 * time.Millisecond})
			sent := s.Send(context.Background(), testJob(url))
			if sent.Attempt.Class != tc.want {
				t.Errorf("class %q, want %q (error %q)", sent.Attempt.Class, tc.want, sent.Attempt.Error)
			}
			if (tc.want == "") != sent.Delivered {
				t.Errorf("delivered %v with class %q", sent.Delivered, sent.Attempt.Class)
			}
		})
	}
}
