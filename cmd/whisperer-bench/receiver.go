package main

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// receiver is the local webhook endpoint every run delivers to. It records
// each request by webhook-id (the event uuid) with its receipt time, and can
// answer 500 for a while to exercise retries.
type receiver struct {
	srv  *http.Server
	ln   net.Listener
	url  string
	mu   sync.Mutex
	seen map[string][]hit // every attempt, by uuid
	// ok counts 2xx answers; total every request.
	ok, total atomic.Int64
	// failUntil, when in the future, makes every answer a 500.
	failUntil atomic.Int64
	// failFirst makes the first request of every event a 500.
	failFirst atomic.Bool
	// onOK is called after each 2xx answer with the running count; faults
	// hook into it.
	onOK func(n int64)
	got  chan struct{} // signalled (coalesced) on every 2xx answer
}

func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{ln: ln, url: "http://" + ln.Addr().String() + "/hook", seen: make(map[string][]hit, 1<<15), got: make(chan struct{}, 1)}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	_, _ = io.Copy(io.Discard, req.Body)
	r.total.Add(1)
	id := req.Header.Get("webhook-id")
	fail := now.UnixNano() < r.failUntil.Load()
	r.mu.Lock()
	if r.failFirst.Load() && len(r.seen[id]) == 0 {
		fail = true
	}
	r.seen[id] = append(r.seen[id], hit{at: now, ok: !fail})
	r.mu.Unlock()
	if fail {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	n := r.ok.Add(1)
	if r.onOK != nil {
		r.onOK(n)
	}
	select {
	case r.got <- struct{}{}:
	default:
	}
}

// hit is one request the receiver answered.
type hit struct {
	at time.Time
	ok bool // answered 2xx
}

// snapshot copies the attempts seen so far.
func (r *receiver) snapshot() map[string][]hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]hit, len(r.seen))
	for k, v := range r.seen {
		out[k] = append([]hit(nil), v...)
	}
	return out
}

func (r *receiver) close() { _ = r.srv.Close() }
