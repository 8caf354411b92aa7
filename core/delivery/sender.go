package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/webhook"
)

// Sender makes delivery attempts over one shared, tuned HTTP transport. It
// is safe for concurrent use.
type Sender struct {
	client    *http.Client
	transport *http.Transport
	connect   time.Duration
	read      time.Duration
	maxBody   int
	now       func() time.Time
}

// Sent is the outcome of one attempt.
type Sent struct {
	// Attempt is what is recorded: time, duration, status, the first
	// MaxResponseBytes of the body and the error text.
	Attempt webhook.Attempt
	// Delivered reports a 2xx answer whose body could be read.
	Delivered bool
	// Header is the response's header; nil when no response arrived.
	Header http.Header
	// Body is the request body that was sent (and signed).
	Body []byte
}

// NewSender returns a Sender configured by cfg (after WithDefaults).
func NewSender(cfg Config) (*Sender, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	allow, _ := parseNetworks(cfg.AllowNetworks) // Validate checked them
	deny, _ := parseNetworks(cfg.DenyNetworks)
	g := &guard{allow: allow, deny: deny}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second, Control: g.control}
	tr := &http.Transport{
		// No proxy from the environment: the guard must see the target's
		// address, not a proxy's.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * cfg.Workers,
		MaxIdleConnsPerHost:   cfg.Workers, // every worker may be talking to one receiver
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.ReadTimeout,
		// Bodies are kept as sent; no gzip work on the hot path.
		DisableCompression: true,
	}
	return &Sender{
		client: &http.Client{
			Transport: tr,
			// A redirect is a failed attempt, never followed: following it
			// would let a receiver bounce us to another target.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		transport: tr,
		connect:   cfg.ConnectTimeout,
		read:      cfg.ReadTimeout,
		maxBody:   cfg.MaxResponseBytes,
		now:       cfg.Now,
	}, nil
}

// Close closes idle connections.
func (s *Sender) Close() { s.transport.CloseIdleConnections() }

// Shared header values; the transport only reads them.
var (
	hdrJSON      = []string{"application/json"}
	hdrUserAgent = []string{"Whisperer/1"}
)

// Send makes one attempt to deliver job. Every failure is reported in the
// returned Attempt's Error, never as a Go error.
func (s *Sender) Send(ctx context.Context, job *webhook.Job) (out Sent) {
	defer func() {
		out.Attempt.Body = storable(out.Attempt.Body)
		out.Attempt.Error = storable(out.Attempt.Error)
	}()
	ev, hook := &job.Event, &job.Webhook
	body := webhook.RequestBody(ev.EventType, ev.UUID, ev.Payload)
	out.Body = body
	out.Attempt.EventID = ev.ID
	out.Attempt.AttemptedAt = s.now()
	start := time.Now()
	defer func() { out.Attempt.Duration = time.Since(start) }()

	ctx, cancel := context.WithTimeout(ctx, s.connect+s.read)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.TargetURL, bytes.NewReader(body))
	if err != nil {
		out.Attempt.Error = "invalid target_url: " + unwrapURLError(err).Error()
		return out
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		out.Attempt.Error = fmt.Sprintf("invalid target_url: scheme %q is not http or https", req.URL.Scheme)
		return out
	}
	s.setHeaders(req.Header, hook, ev, body, time.Now())

	resp, err := s.client.Do(req)
	if err != nil {
		out.Attempt.Error = s.describe(err, time.Since(start))
		return out
	}
	defer resp.Body.Close()
	out.Attempt.Status = resp.StatusCode
	out.Header = resp.Header
	respBody, err := readCapped(resp.Body, s.maxBody)
	out.Attempt.Body = respBody
	if err != nil {
		out.Attempt.Error = "read response body: " + s.describe(err, time.Since(start))
		return out
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		out.Delivered = true
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		out.Attempt.Error = fmt.Sprintf("redirect %d to %q not followed", resp.StatusCode, resp.Header.Get("Location"))
	}
	return out
}

func (s *Sender) setHeaders(h http.Header, hook *webhook.Webhook, ev *webhook.Event, body []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	h["Content-Type"] = hdrJSON
	h["User-Agent"] = hdrUserAgent
	h["X-Whisperer-Event"] = []string{ev.EventType}
	h["Webhook-Id"] = []string{ev.UUID}
	h["Webhook-Timestamp"] = []string{ts}
	if hook.SecretKey != "" {
		mac := hmac.New(sha256.New, []byte(hook.SecretKey))
		mac.Write(body)
		var sum [sha256.Size]byte
		h["X-Whisperer-Signature"] = []string{"sha256=" + hex.EncodeToString(mac.Sum(sum[:0]))}
		// Standard Webhooks: HMAC over "id.timestamp.body" with the same key.
		mac.Reset()
		io.WriteString(mac, ev.UUID)
		io.WriteString(mac, ".")
		io.WriteString(mac, ts)
		io.WriteString(mac, ".")
		mac.Write(body)
		h["Webhook-Signature"] = []string{"v1," + base64.StdEncoding.EncodeToString(mac.Sum(sum[:0]))}
	}
	for name, value := range hook.AdditionalHeaders {
		key := http.CanonicalHeaderKey(name)
		if webhook.ProtectedHeader(name) || !validHeaderName(name) || !validHeaderValue(value) {
			continue
		}
		h[key] = []string{value}
	}
	if auth, ok := hook.BasicAuth(); ok {
		h["Authorization"] = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(auth.Username+":"+auth.Password))}
	}
}

// validHeaderName reports whether name is an RFC 9110 token. Registration
// refuses bad names; this keeps one stored before that rule from failing
// every attempt.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func validHeaderValue(v string) bool {
	return !strings.ContainsAny(v, "\r\n\x00")
}

// bodyBufs recycles response-body buffers: a delivery usually gets a small
// answer, and the buffer is copied into the attempt's string anyway.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// storable makes receiver-controlled text fit a text column on every
// backend: PostgreSQL refuses NUL bytes and invalid UTF-8 (which a body cut
// at max_response_bytes in the middle of a character also is), and one
// refused row would fail its whole batch of results.
func storable(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// readCapped reads at most max bytes of r. It never reads further: an
// endless or huge body costs at most max bytes, and the connection is
// closed instead of drained.
func readCapped(r io.Reader, max int) (string, error) {
	bp := bodyBufs.Get().(*[]byte)
	b := (*bp)[:0]
	var err error
	for len(b) < max {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		var n int
		n, err = r.Read(b[len(b):min(cap(b), max)])
		b = b[:len(b)+n]
		if err != nil {
			break
		}
	}
	if err == io.EOF {
		err = nil
	}
	s := string(b)
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		bodyBufs.Put(bp)
	}
	return s, err
}

// describe turns a transport error into the attempt's error text: the cause
// without the "Post URL" prefix (the URL is in the hook), and timeouts named
// as such.
func (s *Sender) describe(err error, elapsed time.Duration) string {
	var blocked *BlockedError
	if errors.As(err, &blocked) {
		return blocked.Error()
	}
	err = unwrapURLError(err)
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Sprintf("timeout after %s (connect %s, read %s): %v",
			elapsed.Round(time.Millisecond), s.connect, s.read, err)
	}
	return err.Error()
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
