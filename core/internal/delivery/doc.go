// Package delivery is Whisperer's dispatcher: it claims due webhook events
// from the queue (the database), builds and signs each request, sends it,
// writes the attempt back, schedules the retry with the hook's countdown and
// runs the hook's post-delivery callback.
//
// The package imports only core/internal/webhook. It declares the small interfaces it
// consumes (Queue, Countdowns, Callbacks); core/app wires the store, the
// countdown registry and the callback registry into them.
//
// # The request
//
// Every attempt POSTs the same bytes, webhook.RequestBody(type, uuid,
// payload), with these headers:
//
//	Content-Type: application/json
//	User-Agent: Whisperer/1
//	X-Whisperer-Event: <event type>
//	X-Whisperer-Signature: sha256=<hex HMAC-SHA256(secret_key, body)>   (with a secret)
//	webhook-id: <event uuid>             (stable across retries: the idempotency key)
//	webhook-timestamp: <unix seconds>    (of this attempt)
//	webhook-signature: v1,<base64 HMAC-SHA256(secret_key, id + "." + timestamp + "." + body)>   (with a secret)
//
// X-Whisperer-Signature is byte-compatible with dj-whisperer receivers. The
// Standard Webhooks signature uses the raw bytes of the hook's secret_key as
// the HMAC key. The Standard Webhooks libraries expect the key as
// "whsec_" + base64(key), so a receiver verifies with, in Go:
//
//	wh, _ := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte(secretKey)))
//	err := wh.Verify(body, r.Header)
//
// or standardwebhooks.NewWebhookRaw([]byte(secretKey)); the libraries of
// other languages take the same "whsec_…" string.
//
// Then come the hook's additional_headers, except those that would replace a
// header Whisperer sets (Content-Type, Content-Length, Host, Authorization,
// X-Whisperer-*, webhook-*, and the hop-by-hop headers): those are skipped.
// User-Agent may be replaced. Last, HTTP basic auth from config.auth.
//
// # Outcome
//
// A 2xx answer delivers the event. Anything else (another status, a
// redirect — redirects are never followed —, a timeout, a refused or reset
// connection, a DNS or TLS failure, a truncated body) is a failed attempt.
// Every attempt is recorded and counts in retry_count. After a failure the
// next attempt is due countdown(n) later, n being the retries already made in
// the current series; when the series reaches Config.MaxRetries attempts the
// event is given up.
//
// # Target safety
//
// Connections to loopback, private, link-local (which includes cloud
// metadata at 169.254.169.254), CGNAT, multicast and other special-purpose
// addresses are refused unless the address is inside one of
// Config.AllowNetworks. The check runs on the resolved IP at dial time, so a
// hostname that resolves (or re-resolves) to such an address is refused too.
//
// # Queue and concurrency
//
// A Dispatcher claims due events in batches with a lease, delivers them with
// Config.Workers goroutines and writes results back in batches. Delivery is
// at-least-once: if the process dies, the leases expire and another
// dispatcher claims the events again; the event uuid (webhook-id) lets
// receivers drop duplicates. Each claim has its own lease token, and a
// result is written only while its event still holds the token, so a late
// result never overwrites a newer claim's (docs/RELIABILITY.md).
package delivery
