package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The floor relay (`whisperer-bench floor-relay`, started by --floor) is
// the cheapest server one could hand-write that keeps Whisperer's
// guarantees for one hook, so that a run against it measures this
// machine's floor for a delivery: an accepted publish (202) is committed
// before the answer; every committed event is POSTed to the target until
// it answers 2xx (at least once: a crash re-sends what was not recorded
// delivered); each result is written durably. It is a measuring
// instrument, not a second product: one node, no leases, no attempt log,
// no API beyond the publish.
//
// Its path: POST /whisperer/events/ → group-commit writer (one INSERT
// per commit, of every publish waiting) → 202 → the event handed in
// memory to one of the workers → POST to the target with the
// dispatcher's transport settings → the id to the result writer, which
// UPDATEs a batch per 25 ms (Whisperer's linger when nobody waits).

const (
	relayBatch  = 100                   // rows per commit at most, publishes and results
	relayLinger = 25 * time.Millisecond // the result writer's wait to fill a batch
	relayMaxReq = 1 << 20               // publish body limit
)

// relayEvent is one event row.
type relayEvent struct {
	id        int64
	uuid, typ string
	payload   []byte
	done      chan error // the publish waiting for the commit
}

// relayStore is the relay's database: PostgreSQL, SQLite or none (nil).
type relayStore interface {
	// insert commits the events (ids set by the caller) in one commit.
	insert(ctx context.Context, evs []*relayEvent) error
	// delivered records the events delivered, in one commit.
	delivered(ctx context.Context, ids []int64) error
	// pending are the events not recorded delivered (re-sent at start),
	// and the largest id.
	pending(ctx context.Context) ([]*relayEvent, int64, error)
	close()
}

type relay struct {
	token   []byte
	secret  []byte
	target  string
	retry   time.Duration
	timeout time.Duration
	store   relayStore
	tr      *http.Transport
	inserts chan *relayEvent
	jobs    chan *relayEvent
	results chan int64
	lastID  atomic.Int64 // ids are assigned here: the relay is the only writer
	// uuids are a random prefix drawn at start and a counter: unique
	// across restarts without a random read per event.
	uuidPrefix [8]byte
	uuidSeq    atomic.Uint64
}

func relayMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("floor-relay", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	db := fs.String("db", "none", "postgres://…, sqlite://FILE or none")
	target := fs.String("target", "", "the hook's target URL")
	workers := fs.Int("workers", 64, "delivery workers (Whisperer's default)")
	retry := fs.Duration("retry", time.Second, "countdown before a failed attempt is retried")
	timeout := fs.Duration("timeout", 2*time.Second, "connect and read timeouts of an attempt")
	if err := fs.Parse(args); err != nil {
		return err
	}
	token := os.Getenv("WB_FLOOR_TOKEN")
	if token == "" || *target == "" || *workers <= 0 {
		return errors.New("floor-relay needs WB_FLOOR_TOKEN, --target and --workers > 0")
	}
	r := &relay{token: []byte("Token " + token), secret: []byte("bench-secret"), target: *target, retry: *retry, timeout: *timeout,
		inserts: make(chan *relayEvent, 4*relayBatch), jobs: make(chan *relayEvent, 1<<16), results: make(chan int64, 4*relayBatch)}
	_, _ = rand.Read(r.uuidPrefix[:])
	dialer := &net.Dialer{Timeout: *timeout, KeepAlive: 30 * time.Second}
	// The dispatcher's transport settings (core/internal/delivery/sender.go).
	r.tr = &http.Transport{Proxy: nil, DialContext: dialer.DialContext, ForceAttemptHTTP2: true,
		MaxIdleConns: 4 * *workers, MaxIdleConnsPerHost: *workers, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: *timeout, ResponseHeaderTimeout: *timeout, DisableCompression: true}
	var err error
	file, isSQLite := strings.CutPrefix(*db, "sqlite://")
	switch {
	case *db == "none":
	case isSQLite:
		r.store, err = openRelaySQLite(ctx, file)
	default:
		r.store, err = openRelayPostgres(ctx, *db)
	}
	if err != nil {
		return err
	}
	if r.store != nil {
		defer r.store.close()
		evs, maxID, err := r.store.pending(ctx)
		if err != nil {
			return err
		}
		r.lastID.Store(maxID)
		go r.writeInserts()
		go r.writeResults()
		go func() {
			for _, ev := range evs {
				r.jobs <- ev
			}
		}()
	}
	for range *workers {
		go r.work()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /whisperer/events/", r.publish)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	// Results not yet written when it stops are re-sent at the next start.
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// publish accepts {"event_type": T, "payload": P}: 202 once committed.
func (r *relay) publish(w http.ResponseWriter, req *http.Request) {
	if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), r.token) != 1 {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, relayMaxReq))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	var in struct {
		EventType string          `json:"event_type"`
		Payload   json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.EventType == "" || len(in.EventType) > 255 || len(in.Payload) == 0 {
		http.Error(w, "want {\"event_type\": a name, \"payload\": JSON}", http.StatusBadRequest)
		return
	}
	var u [16]byte
	copy(u[:8], r.uuidPrefix[:])
	binary.BigEndian.PutUint64(u[8:], r.uuidSeq.Add(1))
	ev := &relayEvent{uuid: hex.EncodeToString(u[:]), typ: in.EventType, payload: in.Payload}
	if r.store != nil {
		ev.done = make(chan error, 1)
		r.inserts <- ev
		if err := <-ev.done; err != nil {
			log.Printf("publish: %v", err)
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
	}
	r.jobs <- ev
	out := fmt.Appendf(nil, `{"events":[{"id":%d,"uuid":%q,"webhook":1,"state":"pending"}]}`+"\n", ev.id, ev.uuid)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(out)
}

// writeInserts is the group commit: it takes every publish waiting (up to
// relayBatch) and commits them with one statement.
func (r *relay) writeInserts() {
	batch := make([]*relayEvent, 0, relayBatch)
	for ev := range r.inserts {
		batch = append(batch[:0], ev)
	more:
		for len(batch) < relayBatch {
			select {
			case ev := <-r.inserts:
				batch = append(batch, ev)
			default:
				break more
			}
		}
		for _, ev := range batch {
			ev.id = r.lastID.Add(1)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := r.store.insert(ctx, batch)
		cancel()
		for _, ev := range batch {
			ev.done <- err
		}
	}
}

// work sends events; a failed attempt is sent again after r.retry.
func (r *relay) work() {
	for ev := range r.jobs {
		if !r.send(ev) {
			time.AfterFunc(r.retry, func() { r.jobs <- ev })
			continue
		}
		if r.store != nil {
			r.results <- ev.id
		}
	}
}

// send makes one attempt, signed as Standard Webhooks asks (HMAC-SHA256
// of "id.timestamp.body").
func (r *relay) send(ev *relayEvent) bool {
	typ, _ := json.Marshal(ev.typ)
	body := make([]byte, 0, 64+len(typ)+len(ev.uuid)+len(ev.payload))
	body = append(append(append(body, `{"event":{"type":`...), typ...), `,"uuid":"`...)
	body = append(append(append(append(body, ev.uuid...), `"},"payload":`...), ev.payload...), '}')
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, r.secret)
	mac.Write([]byte(ev.uuid + "." + ts + "."))
	mac.Write(body)
	ctx, cancel := context.WithTimeout(context.Background(), 2*r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.target, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header = http.Header{
		"Content-Type": {"application/json"}, "User-Agent": {"whisperer-bench-floor"},
		"Webhook-Id": {ev.uuid}, "Webhook-Timestamp": {ts},
		"Webhook-Signature": {"v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))},
	}
	resp, err := r.tr.RoundTrip(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// writeResults records deliveries: a batch is written relayLinger after
// its first result or at relayBatch results, retried while the database
// fails.
func (r *relay) writeResults() {
	ids := make([]int64, 0, relayBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for id := range r.results {
		ids = append(ids[:0], id)
		linger.Reset(relayLinger)
	fill:
		for len(ids) < relayBatch {
			select {
			case id := <-r.results:
				ids = append(ids, id)
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := r.store.delivered(ctx, ids)
			cancel()
			if err == nil {
				break
			}
			log.Printf("write results: %v", err)
			time.Sleep(100 * time.Millisecond)
		}
	}
}
