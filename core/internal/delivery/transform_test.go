package delivery_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/whisperer/whisperer/core/internal/delivery"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/transform"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// transforms registers, as a plugin would: "envelope" wraps the body and
// sets X-Attempt to the retry count, failing its first two calls per
// event; "cancel" cancels; "panics" panics; "sign" tries to replace the
// signature; "huge" returns a body past the bound.
func transforms(t *testing.T) *transform.Registry {
	t.Helper()
	tr := &transform.Registry{}
	var calls atomic.Int64
	reg := map[string]webhook.TransformFunc{
		"envelope": func(_ context.Context, kw json.RawMessage, in *webhook.TransformInput) (webhook.TransformResult, error) {
			if calls.Add(1) <= 2 {
				return webhook.TransformResult{}, errors.New("not yet")
			}
			// Header names arrive lower case (sdk/ABI.md), Authorization never.
			if in.URL == "" || in.Headers["webhook-id"] != in.UUID || in.Headers["content-type"] != "application/json" ||
				in.Headers["authorization"] != "" || in.Headers["Authorization"] != "" {
				return webhook.TransformResult{}, errors.New("bad input")
			}
			body := append(append([]byte(`{"wrapped":`), in.Body...), '}')
			return webhook.TransformResult{Body: body, Headers: map[string]string{"X-Attempt": strings.Repeat("i", in.RetryCount+1)}}, nil
		},
		"cancel": func(context.Context, json.RawMessage, *webhook.TransformInput) (webhook.TransformResult, error) {
			return webhook.TransformResult{Cancel: true}, nil
		},
		"panics": func(context.Context, json.RawMessage, *webhook.TransformInput) (webhook.TransformResult, error) {
			panic("tenant data broke the plugin")
		},
		"sign": func(context.Context, json.RawMessage, *webhook.TransformInput) (webhook.TransformResult, error) {
			return webhook.TransformResult{Headers: map[string]string{"Webhook-Signature": "v1,forged"}}, nil
		},
		"huge": func(context.Context, json.RawMessage, *webhook.TransformInput) (webhook.TransformResult, error) {
			return webhook.TransformResult{Body: make([]byte, webhook.MaxTransformBody+1)}, nil
		},
	}
	for name, fn := range reg {
		if err := tr.Register("test", name, webhook.Transform{Apply: fn}); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func withTransform(name string) func(*webhook.Webhook) {
	return func(w *webhook.Webhook) {
		w.SecretKey = "s3cret"
		w.Config = map[string]any{"auth": map[string]any{"auth_type": "basic", "username": "u", "password": "p"}}
		w.Transform = &webhook.TransformConfig{Name: name, Kwargs: json.RawMessage(`{}`)}
	}
}

// A hook's transform runs before each attempt is signed: the receiver gets
// the transformed body, signed; a failing transform is a failed attempt
// (class transform) retried on the hook's countdown; a cancel gives the
// event up unsent; a panic, a protected header or a huge body fail the
// attempt and crash nothing.
func TestDispatcherTransforms(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		f := newFixture(t, s)
		rc := newReceiver(t, nil)
		f.hook(t, rc.URL+"/envelope", withTransform("envelope"))
		for _, name := range []string{"cancel", "panics", "sign", "huge"} {
			if err := s.AddEventTypes(context.Background(), "order-"+name); err != nil {
				t.Fatal(err)
			}
			f.hook(t, rc.URL+"/"+name, withTransform(name), func(w *webhook.Webhook) { w.EventType = "order-" + name })
		}
		f.start(t, delivery.Config{Transforms: transforms(t), MaxRetries: 3})

		ev := storetest.Publish(t, s, "package-created", `{"id":1}`)[0]
		poll.Until(t, 15*time.Second, "delivered after 2 transform failures", func() bool {
			return f.event(t, ev.ID).Event.State == webhook.StateDelivered
		})
		j := f.event(t, ev.ID)
		if len(j.Event.Attempts) != 3 || rc.hits.Load() != 1 {
			t.Fatalf("%d attempts, %d requests: %+v", len(j.Event.Attempts), rc.hits.Load(), j.Event.Attempts)
		}
		for _, r := range f.q.resultsFor(ev.ID)[:2] {
			if a := r.Attempt; a.Class != webhook.ClassTransform || a.Error != `transform "envelope" failed: not yet` ||
				a.Status != 0 || r.State != webhook.StatePending || r.WebhookID != 0 {
				t.Errorf("failed attempt: %+v", r)
			}
		}
		body, hdr := *rc.body.Load(), *rc.header.Load()
		if !strings.HasPrefix(string(body), `{"wrapped":{`) || hdr.Get("X-Attempt") != "iii" || hdr.Get("Authorization") == "" {
			t.Fatalf("received %s %v", body, hdr)
		}
		wh, _ := standardwebhooks.NewWebhookRaw([]byte("s3cret"))
		if err := wh.Verify(body, hdr); err != nil {
			t.Fatalf("the signature does not cover the transformed body: %v", err)
		}

		for name, want := range map[string]struct {
			state webhook.State
			class webhook.ErrorClass
			msg   string
		}{
			"cancel": {webhook.StateGivenUp, webhook.ClassCancelled, `cancelled by transform "cancel"`},
			"panics": {webhook.StateGivenUp, webhook.ClassTransform, `transform "panics" failed: panic`},
			"sign":   {webhook.StateGivenUp, webhook.ClassTransform, `transform "sign" failed: it sets "Webhook-Signature", which is protected`},
			"huge":   {webhook.StateGivenUp, webhook.ClassTransform, `transform "huge" failed: the body has 1048577 bytes`},
		} {
			ev := storetest.Publish(t, s, "order-"+name, `{"id":2}`)[0]
			poll.Until(t, 15*time.Second, name+" given up", func() bool { return f.event(t, ev.ID).Event.State == want.state })
			j := f.event(t, ev.ID)
			n := 3 // max_retries attempts, each failed
			if name == "cancel" {
				n = 1 // no retry
			}
			if len(j.Event.Attempts) != n {
				t.Fatalf("%s: %d attempts, want %d: %+v", name, len(j.Event.Attempts), n, j.Event.Attempts)
			}
			res := f.q.resultsFor(ev.ID)
			if a := res[len(res)-1].Attempt; a.Class != want.class || !strings.HasPrefix(a.Error, want.msg) {
				t.Errorf("%s: attempt %+v, want %s %q", name, a, want.class, want.msg)
			}
		}
		if rc.hits.Load() != 1 {
			t.Fatalf("the receiver got %d requests, want 1", rc.hits.Load())
		}
		if h, _ := s.Webhook(context.Background(), webhook.Scope{All: true}, j.Webhook.ID); h.FailingSince != nil {
			t.Errorf("transform failures counted against the endpoint's health")
		}
	})
}

// Without a transform registry, a hook's transform fails its attempts
// rather than sending the untransformed body.
func TestSendTransformUnavailable(t *testing.T) {
	rc := newReceiver(t, nil)
	s := newSender(t, delivery.Config{AllowNetworks: loopback})
	job := testJob(rc.URL)
	job.Webhook.Transform = &webhook.TransformConfig{Name: "x"}
	out := s.Send(context.Background(), job)
	if out.Delivered || out.Attempt.Class != webhook.ClassTransform || rc.hits.Load() != 0 {
		t.Fatalf("%+v", out.Attempt)
	}
}
