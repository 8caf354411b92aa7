// Command verify is a receiver that verifies Whisperer's signatures.
// Standard library only.
//
// Run: WHISPERER_SECRET=... PORT=8080 go run verify.go
package main

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// tolerance is how far webhook-timestamp may be from now.
const tolerance = 5 * time.Minute

// verifyWhisperer checks X-Whisperer-Signature (dj-whisperer's):
// "sha256=" + hex HMAC-SHA256(secret, body).
func verifyWhisperer(secrets []string, body []byte, h http.Header) bool {
	got := []byte(h.Get("X-Whisperer-Signature"))
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		if hmac.Equal(got, []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))) {
			return true
		}
	}
	return false
}

// verifyStandard checks webhook-signature (Standard Webhooks):
// space-separated "v1,<base64 HMAC-SHA256(secret, webhook-id + "." +
// webhook-timestamp + "." + body)>" values; one must match.
func verifyStandard(secrets []string, body []byte, h http.Header, now time.Time) bool {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > tolerance {
		return false // stale or from the future: a replay
	}
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(id + "." + ts + "."))
		mac.Write(body)
		want := []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		for _, sig := range strings.Fields(h.Get("webhook-signature")) {
			if v, ok := strings.CutPrefix(sig, "v1,"); ok && hmac.Equal([]byte(v), want) {
				return true
			}
		}
	}
	return false
}

func main() {
	// The hook's secret_key, and during a rotation the previous one.
	var secrets []string
	for _, name := range []string{"WHISPERER_SECRET", "WHISPERER_PREVIOUS_SECRET"} {
		if s := os.Getenv(name); s != "" {
			secrets = append(secrets, s)
		}
	}
	if len(secrets) == 0 {
		log.Fatal("set WHISPERER_SECRET to the hook's secret_key")
	}
	http.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20)) // the raw bytes: verify them before parsing
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		var ok bool
		if r.URL.Path == "/dj-whisperer" { // a receiver written for dj-whisperer
			ok = verifyWhisperer(secrets, body, r.Header)
		} else {
			ok = verifyStandard(secrets, body, r.Header, time.Now())
		}
		if !ok {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// Verified: json.Unmarshal(body, ...), and drop a webhook-id already handled (retries repeat it).
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+cmp.Or(os.Getenv("PORT"), "8080"), nil))
}
