package app_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// A hook whose sealed secrets no longer open (a tampered or corrupt
// ciphertext) fails its own events, as failed attempts that name the cause
// and send nothing; every other hook's events are still delivered, and the
// owner still lists the hooks.
func TestPoisonHookFailsAlone(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var good, poison atomic.Int64
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/poison" {
					poison.Add(1)
				} else {
					good.Add(1)
				}
			}))
			t.Cleanup(recv.Close)
			n := startNode(t, backend, nil, nil)
			_, alice := storetest.User(t, n.Store, "alice", webhook.RoleUser)
			_, pub := storetest.User(t, n.Store, "pub", webhook.RolePublisher)
			var bad, ok struct {
				ID int64 `json:"id"`
			}
			n.do(t, "POST", "/whisperer/hooks/", alice, map[string]any{"event_type": "package-created",
				"target_url": recv.URL + "/poison", "secret_key": "s3cret-bad"}, http.StatusCreated, &bad)
			n.do(t, "POST", "/whisperer/hooks/", alice, map[string]any{"event_type": "package-created",
				"target_url": recv.URL + "/good", "secret_key": "s3cret-good"}, http.StatusCreated, &ok)
			// A ciphertext that does not authenticate, under the right key id.
			var sealed string
			if err := n.Store.DB().NewSelect().Table("webhooks").Column("secret_key").Where("id = ?", bad.ID).
				Scan(t.Context(), &sealed); err != nil {
				t.Fatal(err)
			}
			tampered := sealed[:len(sealed)-4] + "AAAA"
			if _, err := n.Store.DB().NewUpdate().Table("webhooks").Set("secret_key = ?", tampered).
				Where("id = ?", bad.ID).Exec(t.Context()); err != nil {
				t.Fatal(err)
			}

			for i := range 5 {
				n.do(t, "POST", "/whisperer/events/", pub, map[string]any{"event_type": "package-created", "payload": i}, http.StatusAccepted, nil)
			}
			type attempt struct {
				Error string `json:"error"`
			}
			type event struct {
				UUID     string    `json:"uuid"`
				State    string    `json:"state"`
				Attempts []attempt `json:"attempts"`
			}
			var failed []event
			poll.UntilNil(t, 15*time.Second, func() error {
				var page struct {
					Results []event `json:"results"`
				}
				n.do(t, "GET", "/whisperer/hook_events/?webhook="+fmt.Sprint(bad.ID), alice, nil, http.StatusOK, &page)
				failed = failed[:0]
				for _, e := range page.Results {
					if len(e.Attempts) > 0 {
						failed = append(failed, e)
					}
				}
				if good.Load() < 5 || len(failed) < 5 {
					return notYet(fmt.Sprintf("%d delivered, %d poisoned events attempted", good.Load(), len(failed)))
				}
				return nil
			})
			if poison.Load() != 0 {
				t.Fatalf("the poisoned hook's target got %d requests", poison.Load())
			}
			for _, e := range failed {
				msg := e.Attempts[0].Error
				if e.State != string(webhook.StatePending) || !strings.Contains(msg, "cannot be decrypted") ||
					!strings.Contains(msg, "secret_key") || strings.Contains(msg, "enc:v1") || strings.Contains(msg, tampered[20:]) {
					t.Errorf("poisoned event %s: state %s, attempt error %q", e.UUID, e.State, msg)
				}
			}
			// The owner's list shows both hooks; the poisoned one without a
			// secret_key (never as "" or a ciphertext).
			var list struct {
				Results []map[string]any `json:"results"`
			}
			n.do(t, "GET", "/whisperer/hooks/", alice, nil, http.StatusOK, &list)
			if len(list.Results) != 2 {
				t.Fatalf("hooks list: %v", list.Results)
			}
			for _, h := range list.Results {
				id := int64(h["id"].(float64))
				if sk, has := h["secret_key"]; (id == ok.ID) != has || (has && sk != "s3cret-good") {
					t.Errorf("hook %d listed with secret_key %v (has %v)", id, sk, has)
				}
			}
			var one map[string]any
			n.do(t, "GET", fmt.Sprintf("/whisperer/hooks/%d/", bad.ID), alice, nil, http.StatusOK, &one)
			if _, has := one["secret_key"]; has {
				t.Errorf("poisoned hook shown with a secret_key: %v", one)
			}
			// Writing it back without a new secret would deliver unsigned.
			n.do(t, "PATCH", fmt.Sprintf("/whisperer/hooks/%d/", bad.ID), alice, map[string]any{"callback": ""}, http.StatusConflict, nil)
			n.do(t, "PATCH", fmt.Sprintf("/whisperer/hooks/%d/", bad.ID), alice, map[string]any{"secret_key": "fresh"}, http.StatusOK, &one)
			if one["secret_key"] != "fresh" {
				t.Errorf("repaired hook: %v", one)
			}
			if logs := n.logs.String(); strings.Contains(logs, tampered[20:]) || strings.Contains(logs, sealed[20:]) {
				t.Error("the log holds the ciphertext")
			}
		})
	}
}
