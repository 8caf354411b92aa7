package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// runRaw is the machine's ceiling: o.concurrency clients POST o.events
// delivery-sized requests straight to the receiver over loopback, with the
// transport settings the dispatcher uses.
func runRaw(ctx context.Context, o options) (*result, error) {
	rcv, err := newReceiver()
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	tr := &http.Transport{MaxIdleConnsPerHost: o.concurrency, MaxIdleConns: 4 * o.concurrency, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	body := []byte(`{"event":{"type":"order-created","uuid":"00000000000000000000000000000000"},"payload":{"i":1,"t":1700000000000000000}}`)
	lat := make([]time.Duration, o.events)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= o.events || ctx.Err() != nil {
					return
				}
				var id [16]byte
				_, _ = rand.Read(id[:])
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, rcv.url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("webhook-id", hex.EncodeToString(id[:]))
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	res := &result{Name: o.name, Target: o.target, Backend: "raw", Events: o.events, Hooks: 1, Concurrency: o.concurrency,
		Expected: o.events, Received: int(rcv.ok.Load()), DurationSec: elapsed.Seconds()}
	res.DeliveriesPerSec = float64(res.Received) / elapsed.Seconds()
	res.Lost = o.events - res.Received
	slices.Sort(lat)
	pct := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
	res.P50MS, res.P90MS, res.P99MS, res.MaxMS = pct(0.5), pct(0.9), pct(0.99), ms(lat[len(lat)-1])
	if n := failed.Load(); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d requests failed", n))
	}
	return res, ctx.Err()
}
