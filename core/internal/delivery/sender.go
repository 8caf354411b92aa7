package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Sender makes delivery attempts over one shared, tuned HTTP transport. It
// is safe for concurrent use.
type Sender struct {
	transport *http.Transport
	connect   time.Duration
	read      time.Duration
	maxBody   int
	now       func() time.Time
	tr        Transforms
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
	// Body is the request body that was sent (and signed): the
	// transformed one when the hook has a transform.
	Body []byte
	// Transform is why the hook's transform left nothing to send (nil
	// when it ran or there is none): the attempt was not made.
	Transform *webhook.TransformError
}

// NewSender returns a Sender configured by cfg (after WithDefaults).
func NewSender(cfg Config) (*Sender, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := newGuard(cfg)
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second, Control: g.control, Resolver: cfg.Resolver}
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
		transport: tr,
		connect:   cfg.ConnectTimeout,
		read:      cfg.ReadTimeout,
		maxBody:   cfg.MaxResponseBytes,
		now:       cfg.Now,
		tr:        cfg.Transforms,
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
	out.Attempt.EventID = ev.ID
	out.Attempt.AttemptedAt = s.now()
	start := time.Now()
	defer func() { out.Attempt.Duration = time.Since(start) }()

	body, header, terr := build(ctx, s.tr, hook, ev, time.Now())
	out.Body = body
	if terr != nil {
		out.Transform = terr
		out.Attempt.Error, out.Attempt.Class = terr.Error(), webhook.ClassTransform
		if terr.Cancelled {
			out.Attempt.Class = webhook.ClassCancelled
		}
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, s.connect+s.read)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.TargetURL, bytes.NewReader(body))
	if err != nil {
		out.Attempt.Error = "invalid target_url: " + unwrapURLError(err).Error()
		out.Attempt.Class = webhook.ClassInvalidTarget
		return out
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		out.Attempt.Error = fmt.Sprintf("invalid target_url: scheme %q is not http or https", req.URL.Scheme)
		out.Attempt.Class = webhook.ClassInvalidTarget
		return out
	}
	req.Header = header
	// A failed handshake is known from the trace: the transport turns some
	// TLS errors into plain text ("server gave HTTP response to HTTPS
	// client").
	var tlsFailed atomic.Bool
	if req.URL.Scheme == "https" {
		req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			TLSHandshakeDone: func(_ tls.ConnectionState, err error) { tlsFailed.Store(err != nil) },
		}))
	}

	resp, err := s.roundTrip(req)
	if err != nil {
		out.Attempt.Error = s.describe(err, time.Since(start))
		out.Attempt.Class = classify(err, tlsFailed.Load())
		return out
	}
	defer resp.Body.Close()
	out.Attempt.Status = resp.StatusCode
	out.Header = resp.Header
	respBody, err := readCapped(resp.Body, s.maxBody)
	out.Attempt.Body = respBody
	if err != nil {
		out.Attempt.Error = "read response body: " + s.describe(err, time.Since(start))
		out.Attempt.Class = classify(err, false)
		return out
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		out.Delivered = true
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		out.Attempt.Error = fmt.Sprintf("redirect %d to %q not followed", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !out.Delivered {
		out.Attempt.Class = webhook.ClassHTTP // an answer, but not a delivery
	}
	return out
}

// roundTrip sends req on the transport: one request, whatever the answer.
// A redirect is a failed attempt, never followed (following it would let
// a receiver bounce us to another target), so an http.Client adds nothing
// but its per-request costs (a copy of the headers for redirects, a URL
// error wrapping every failure); of what it does, this keeps the two that
// reach a receiver or an attempt's text: credentials in the target URL
// become basic authentication unless a header already says otherwise, and
// a plain HTTP answer to a TLS handshake is http.ErrSchemeMismatch.
func (s *Sender) roundTrip(req *http.Request) (*http.Response, error) {
	if u := req.URL.User; u != nil && req.Header.Get("Authorization") == "" {
		pass, _ := u.Password()
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)))
	}
	resp, err := s.transport.RoundTrip(req)
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && string(rh.RecordHeader[:]) == "HTTP/" {
		err = http.ErrSchemeMismatch
	}
	return resp, err
}

// Preview returns the body and headers Send would send for ev to hook at
// now, after the hook's transform (through tr), signatures included,
// without sending: the dry run (POST hooks/{id}/test/, whisperer hooks
// test). The transport adds only Host and Content-Length. err is why the
// transform left nothing to send; the header is then unsigned.
func Preview(ctx context.Context, tr Transforms, hook *webhook.Webhook, ev *webhook.Event, now time.Time) ([]byte, http.Header, error) {
	body, h, err := build(ctx, tr, hook, ev, now)
	if err != nil {
		return body, h, err
	}
	return body, h, nil
}

// build makes an attempt's body and headers: the event's body, the
// hook's headers, its transform's body and headers over them, and the
// signatures of the final body last, so they cover the bytes sent.
func build(ctx context.Context, tr Transforms, hook *webhook.Webhook, ev *webhook.Event, now time.Time) ([]byte, http.Header, *webhook.TransformError) {
	body := webhook.RequestBody(ev.EventType, ev.UUID, ev.Payload)
	// Sized for the fixed headers, the two signatures and the hook's own,
	// so that it never grows.
	h := make(http.Header, 8+len(hook.AdditionalHeaders))
	ts := strconv.FormatInt(now.Unix(), 10)
	setHeaders(h, hook, ev, ts)
	if hook.Transform != nil {
		var err *webhook.TransformError
		if body, err = transform(ctx, tr, hook, ev, h, body); err != nil {
			return body, h, err
		}
	}
	sign(h, hook, ev, body, ts, now)
	return body, h, nil
}

// setHeaders sets every header but the signatures.
func setHeaders(h http.Header, hook *webhook.Webhook, ev *webhook.Event, ts string) {
	h["Content-Type"] = hdrJSON
	h["User-Agent"] = hdrUserAgent
	// One allocation for the three values; each slice's capacity ends
	// at its value, so that an Add copies rather than overwrites the next.
	v := []string{ev.EventType, ev.UUID, ts}
	h["X-Whisperer-Event"] = v[0:1:1]
	h["Webhook-Id"] = v[1:2:2]
	h["Webhook-Timestamp"] = v[2:3:3]
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

// sign adds the signatures of body with the hook's secrets.
func sign(h http.Header, hook *webhook.Webhook, ev *webhook.Event, body []byte, ts string, now time.Time) {
	if hook.SecretKey == "" {
		return
	}
	mac := hmac.New(sha256.New, []byte(hook.SecretKey))
	mac.Write(body)
	var sum [sha256.Size]byte
	var hx [len("sha256=") + 2*sha256.Size]byte
	copy(hx[:], "sha256=")
	hex.Encode(hx[len("sha256="):], mac.Sum(sum[:0]))
	// Standard Webhooks: HMAC over "id.timestamp.body" with the same key.
	buf := make([]byte, 0, 2*len("v1,")+1+2*base64.StdEncoding.EncodedLen(sha256.Size))
	buf = standardSignature(append(buf, "v1,"...), mac, ev.UUID, ts, body)
	// During a rotation's overlap the old secret signs too: Standard
	// Webhooks lists several signatures separated by spaces, and a
	// receiver still on the old secret accepts the request.
	if old, ok := hook.PreviousSecret(now); ok {
		buf = standardSignature(append(buf, " v1,"...), hmac.New(sha256.New, []byte(old)), ev.UUID, ts, body)
	}
	v := []string{string(hx[:]), string(buf)} // one allocation, as in setHeaders
	h[webhook.SignatureHeader] = v[0:1:1]
	h[webhook.StandardSignatureHeader] = v[1:2:2]
}

// standardSignature appends to dst the Standard Webhooks signature: base64
// of mac (an HMAC-SHA256 keyed with the secret, reset here) over
// "id.timestamp.body".
func standardSignature(dst []byte, mac hash.Hash, id, ts string, body []byte) []byte {
	mac.Reset()
	io.WriteString(mac, id)
	io.WriteString(mac, ".")
	io.WriteString(mac, ts)
	io.WriteString(mac, ".")
	mac.Write(body)
	var sum [sha256.Size]byte
	return base64.StdEncoding.AppendEncode(dst, mac.Sum(sum[:0]))
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

// classify is the kind of a transport error, from its types (and whether
// the TLS handshake failed): the text is the receiver's and the
// platform's, never parsed.
func classify(err error, tlsFailed bool) webhook.ErrorClass {
	var (
		blocked *BlockedError
		ne      net.Error
		certErr *tls.CertificateVerificationError
		alert   tls.AlertError
		header  tls.RecordHeaderError
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		name    x509.HostnameError
	)
	switch {
	case errors.As(err, &blocked), errors.Is(err, syscall.ECONNREFUSED):
		return webhook.ClassRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return webhook.ClassTimeout
	case tlsFailed, errors.As(err, &certErr), errors.As(err, &alert), errors.As(err, &header),
		errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &name):
		return webhook.ClassTLS
	}
	return webhook.ClassConnection
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
