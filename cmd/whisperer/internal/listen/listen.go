// Package listen is a webhook receiver for trying Whisperer out locally
// (`whisperer listen`): it prints each delivery — event type, uuid, whether
// both signatures verify, the payload pretty-printed — and can fail a share
// of requests on purpose so that retries can be watched.
//
// It checks the two signature schemes Whisperer sends (see core/internal/delivery):
// X-Whisperer-Signature, "sha256=" and the hex HMAC-SHA256 of the raw body
// keyed with the hook's secret_key, and the Standard Webhooks
// webhook-signature, verified with the Standard Webhooks library keyed with
// the secret_key's raw bytes. It reports a bad signature but still answers
// 2xx: it is a window on deliveries, not a gate.
package listen

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Config tunes a Receiver. The zero value is usable.
type Config struct {
	// Secret is the hook's secret_key, to verify signatures with. Empty
	// means signatures are not checked.
	Secret string
	// FailRate is the share of requests, from 0 to 1, answered 500 on
	// purpose so that Whisperer retries them. Defaults to 0.
	FailRate float64
	// MaxBodyBytes bounds a request body; larger ones get 413. Defaults to
	// 10 MiB.
	MaxBodyBytes int64
	// Rand returns a number in [0, 1) deciding which requests fail.
	// Defaults to math/rand/v2's Float64.
	Rand func() float64
	// Now stamps the printed deliveries. Defaults to time.Now.
	Now func() time.Time
	// OnDelivery, when set, is called after each delivery is printed.
	OnDelivery func(Delivery)
}

// Validate says what is wrong with c.
func (c Config) Validate() error {
	if c.FailRate < 0 || c.FailRate > 1 {
		return fmt.Errorf("the fail rate must be between 0 and 1, got %v", c.FailRate)
	}
	return nil
}

// Verdict is what a signature check found.
type Verdict string

// Verdicts. An invalid signature's verdict says why after "invalid: ".
const (
	Verified  Verdict = "verified"
	Missing   Verdict = "missing"   // the header is absent (the hook has no secret_key)
	Unchecked Verdict = "unchecked" // no secret to check with
	Invalid   Verdict = "invalid"
)

// Delivery is one request as the receiver saw and answered it.
type Delivery struct {
	Received  time.Time
	EventType string // X-Whisperer-Event
	UUID      string // webhook-id, stable across retries
	// Seen counts the requests with this UUID so far, this one included:
	// above 1 it is a retry (or a redelivery).
	Seen int
	// Whisperer and Standard are the verdicts on X-Whisperer-Signature and
	// webhook-signature.
	Whisperer, Standard Verdict
	Body                []byte
	// Status is the answer; Failed says it was a failure on purpose.
	Status int
	Failed bool
}

// Receiver is an http.Handler that prints each delivery to its writer. It
// is safe for concurrent use.
type Receiver struct {
	cfg Config
	sw  *standardwebhooks.Webhook

	mu     sync.Mutex
	out    io.Writer
	seen   map[string]int
	count  int
	failed int
}

// maxTracked bounds the uuids whose requests are counted.
const maxTracked = 100_000

// New returns a receiver printing to out.
func New(cfg Config, out io.Writer) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.MaxBodyBytes = cmp.Or(cfg.MaxBodyBytes, 10<<20)
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Receiver{cfg: cfg, out: out, seen: map[string]int{}}
	if cfg.Secret != "" {
		sw, err := standardwebhooks.NewWebhookRaw([]byte(cfg.Secret))
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		r.sw = sw
	}
	return r, nil
}

// ServeHTTP answers a delivery: 500 for the share failed on purpose, 200
// otherwise (405 for a method other than POST, 413 for a body too large).
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "whisperer listen takes POSTed deliveries", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	d := Delivery{
		Received:  r.cfg.Now(),
		EventType: req.Header.Get("X-Whisperer-Event"),
		UUID:      req.Header.Get("webhook-id"),
		Body:      body,
		Status:    http.StatusOK,
	}
	d.Whisperer, d.Standard = r.verify(body, req.Header)
	if r.cfg.FailRate > 0 && r.cfg.Rand() < r.cfg.FailRate {
		d.Status, d.Failed = http.StatusInternalServerError, true
	}
	r.mu.Lock()
	if len(r.seen) >= maxTracked {
		clear(r.seen)
	}
	r.seen[d.UUID]++
	d.Seen = r.seen[d.UUID]
	r.count++
	if d.Failed {
		r.failed++
	}
	r.print(d)
	r.mu.Unlock()
	if r.cfg.OnDelivery != nil {
		r.cfg.OnDelivery(d)
	}
	if d.Failed {
		http.Error(w, "failing on purpose (whisperer listen --fail-rate)", d.Status)
		return
	}
	w.WriteHeader(d.Status)
}

// Verify checks both of a delivery's signatures against secret.
func Verify(secret string, body []byte, h http.Header) (whisperer, standard Verdict) {
	r, err := New(Config{Secret: secret}, io.Discard)
	if err != nil {
		return Invalid, Invalid
	}
	return r.verify(body, h)
}

func (r *Receiver) verify(body []byte, h http.Header) (whisperer, standard Verdict) {
	whisperer, standard = Unchecked, Unchecked
	if h.Get("X-Whisperer-Signature") == "" {
		whisperer = Missing
	} else if r.cfg.Secret != "" {
		mac := hmac.New(sha256.New, []byte(r.cfg.Secret))
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		whisperer = Verified
		if !hmac.Equal([]byte(h.Get("X-Whisperer-Signature")), []byte(want)) {
			whisperer = Invalid + ": the HMAC does not match (another secret, or a modified body)"
		}
	}
	if h.Get("webhook-signature") == "" {
		standard = Missing
	} else if r.sw != nil {
		standard = Verified
		if err := r.sw.Verify(body, h); err != nil {
			standard = Invalid + Verdict(": "+strings.TrimPrefix(err.Error(), "unable to verify payload, err: "))
		}
	}
	return whisperer, standard
}

// print writes one delivery: a summary line, the verdicts, the body
// indented (the payload of Whisperer's envelope, pretty-printed).
func (r *Receiver) print(d Delivery) {
	var b strings.Builder
	retry := ""
	if d.Seen > 1 {
		retry = fmt.Sprintf(" (request %d for this event)", d.Seen)
	}
	answer := fmt.Sprintf("%d", d.Status)
	if d.Failed {
		answer += ", failed on purpose"
	}
	fmt.Fprintf(&b, "%s  %s  %s%s  → %s\n", d.Received.Format("15:04:05.000"),
		cmp.Or(d.EventType, "(no X-Whisperer-Event)"), cmp.Or(d.UUID, "(no webhook-id)"), retry, answer)
	fmt.Fprintf(&b, "  X-Whisperer-Signature: %s\n  webhook-signature: %s\n", d.Whisperer, d.Standard)
	var env struct {
		Payload json.RawMessage `json:"payload"`
	}
	var pretty bytes.Buffer
	if json.Unmarshal(d.Body, &env) == nil && env.Payload != nil && json.Indent(&pretty, env.Payload, "  ", "  ") == nil {
		fmt.Fprintf(&b, "  payload: %s\n", pretty.Bytes())
	} else {
		fmt.Fprintf(&b, "  body (%d bytes, not Whisperer's envelope): %q\n", len(d.Body), truncate(d.Body, 512))
	}
	b.WriteString("\n")
	_, _ = io.WriteString(r.out, b.String())
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Counts returns the requests received and those failed on purpose.
func (r *Receiver) Counts() (received, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count, r.failed
}

// Serve serves r on ln until ctx ends, then waits up to 5 seconds for
// requests in flight. It returns nil after a clean shutdown.
func Serve(ctx context.Context, ln net.Listener, r *Receiver) error {
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
