package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/internal/config"
	"github.com/whisperer/whisperer/core/internal/djimport"
	"github.com/whisperer/whisperer/core/internal/store"
	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/core/internal/webhook"
	"github.com/whisperer/whisperer/internal/poll"
)

// djSource loads dj-whisperer's schema (and the seed unless schemaOnly)
// into a fresh PostgreSQL schema, then runs extra; it returns the URL of
// that database and a connection to it.
func djSource(t *testing.T, schemaOnly bool, extra ...string) (string, *pgx.Conn) {
	t.Helper()
	url := storetest.URL(t, store.Postgres)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	files := []string{"djwhisperer-0.2.sql"}
	if !schemaOnly {
		files = append(files, "seed.sql")
	}
	var script []string
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("..", "internal", "djimport", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		script = append(script, string(b))
	}
	for _, sql := range append(script, extra...) {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("load dj-whisperer database: %v\n%.300s", err, sql)
		}
	}
	return url, conn
}

// rowCounts counts what an import may write.
func rowCounts(t *testing.T, s *store.Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"users", "api_tokens", "event_types", "webhooks", "messages", "webhook_events", "delivery_attempts"} {
		var n int
		if err := s.DB().QueryRowContext(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

func runImport(t *testing.T, cfg *config.Config, opts app.ImportOptions) *djimport.Report {
	t.Helper()
	var progress strings.Builder
	opts.Progress, opts.ProgressEvery = &progress, 2
	rep, err := app.ImportDJWhisperer(context.Background(), cfg, app.NewLogger(config.Log{Level: "error"}, io.Discard), opts)
	if err != nil {
		t.Fatalf("import: %v\nprogress:\n%s", err, progress.String())
	}
	if opts.Events && !strings.Contains(progress.String(), "import: events 4/5") {
		t.Errorf("no progress line every 2 events:\n%s", progress.String())
	}
	return rep
}

// problemsOf indexes a report's problems by table and id.
func problemsOf(rep *djimport.Report) map[string]djimport.Problem {
	out := map[string]djimport.Problem{}
	for _, p := range rep.Problems {
		out[p.Table+" "+p.ID] = p
	}
	return out
}

// delivery is one request the receiver got.
type delivery struct {
	path, uuid, auth, apiKey string
	body                     map[string]any
}

func TestImportDJWhisperer(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) { testImport(t, backend) })
	}
}

func testImport(t *testing.T, backend string) {
	ctx := context.Background()
	var mu sync.Mutex
	var got []delivery
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		d := delivery{path: r.URL.Path, auth: r.Header.Get("Authorization"), apiKey: r.Header.Get("X-Api-Key")}
		_ = json.Unmarshal(b, &d.body)
		if ev, ok := d.body["event"].(map[string]any); ok {
			d.uuid, _ = ev["uuid"].(string)
		}
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	// The receiver stands for the hooks' targets.
	from, _ := djSource(t, false,
		`UPDATE whisperer_webhook SET target_url = '`+receiver.URL+`/orders' WHERE id = 1`,
		`UPDATE whisperer_webhook SET target_url = '`+receiver.URL+`/packages' WHERE id = 2`)

	var cfg *config.Config
	n := startNode(t, backend, []string{"fastcb.wasm"}, func(c *config.Config) { cfg = c })
	// bob has a Whisperer account already: it is reused, not duplicated.
	bob, err := n.Store.CreateUser(ctx, "bob", webhook.RoleUser)
	if err != nil {
		t.Fatal(err)
	}

	// A dry run reports what a run would do and writes nothing.
	before := rowCounts(t, n.Store)
	dry := runImport(t, cfg, app.ImportOptions{From: from, Events: true, Requeue: true, DryRun: true})
	if after := rowCounts(t, n.Store); !mapsEqual(before, after) {
		t.Fatalf("dry run wrote: %v → %v", before, after)
	}
	if !dry.DryRun || dry.Users != (djimport.Counts{Imported: 3, Existing: 1}) || dry.Hooks.Imported != 7 ||
		dry.Tokens.Imported != 4 || dry.Events.Imported != 5 || dry.Requeued != 3 {
		t.Fatalf("dry run report: %+v", dry)
	}

	rep := runImport(t, cfg, app.ImportOptions{From: from, Events: true, Requeue: true})
	if rep.Users != (djimport.Counts{Imported: 3, Existing: 1}) || rep.Tokens != (djimport.Counts{Imported: 4}) ||
		rep.Hooks != (djimport.Counts{Imported: 7}) || rep.Inactive != 3 ||
		rep.Events != (djimport.Counts{Imported: 5}) || rep.Requeued != 3 {
		t.Fatalf("report: %+v", rep)
	}
	probs := problemsOf(rep)
	for key, want := range map[string]string{
		"whisperer_webhook 3":                             `imported inactive: callback "myapp.hooks.on_delivery" is not registered`,
		"whisperer_webhook 5":                             "imported inactive: retry_countdown_config is refused: retry_countdown_config.kwargs.max_value: Ensure this value is less than or equal to 2592000.",
		"whisperer_webhook 6":                             "imported inactive: retry_countdown_config is refused: retry_countdown_config.choice: This field is required.",
		"whisperer_webhook 7":                             "imported changed: the credentials in target_url moved into config.auth",
		"authtoken_token of user 4 starting \"da4e0000\"": "imported revoked",
	} {
		p, ok := probs[key]
		if !ok || !strings.Contains(p.Action+": "+p.Reason, want) {
			t.Errorf("%s: got %+v, want %q", key, p, want)
		}
	}
	var text strings.Builder
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "rows need attention") || !strings.Contains(text.String(), "myapp.hooks.on_delivery") {
		t.Errorf("text report:\n%s", text.String())
	}

	// The DRF tokens authenticate unchanged, with the roles mapped.
	const aliceKey, bobKey, carolKey, daveKey = "a11ce0000000000000000000000000000000a11c",
		"b0b0000000000000000000000000000000000b0b", "ca401000000000000000000000000000000ca401",
		"da4e0000000000000000000000000000000da4e0"
	var page struct {
		Results []map[string]any `json:"results"`
	}
	n.do(t, "GET", "/whisperer/hooks/", aliceKey, nil, 200, &page)
	if len(page.Results) != 7 {
		t.Fatalf("alice (superuser → admin) sees %d hooks, want every user's 7", len(page.Results))
	}
	n.do(t, "GET", "/whisperer/hooks/", carolKey, nil, 200, &page)
	if len(page.Results) != 2 {
		t.Fatalf("carol (staff → user) sees %d hooks, want her 2", len(page.Results))
	}
	n.do(t, "GET", "/whisperer/hooks/", daveKey, nil, 401, nil) // inactive in Django: DRF refused it too
	n.do(t, "GET", "/whisperer/hooks/", "e4140000000000000000000000000000000e4140", nil, 401, nil)
	n.do(t, "GET", "/whisperer/hooks/", bobKey, nil, 200, &page)
	hooks := map[string]map[string]any{}
	for _, h := range page.Results {
		hooks[h["target_url"].(string)] = h
	}
	if len(hooks) != 3 {
		t.Fatalf("bob sees %d hooks: %v", len(hooks), page.Results)
	}
	wantJSON(t, "hook 1", hooks[receiver.URL+"/orders"], `{
		"target_url": "`+receiver.URL+`/orders", "event_type": "order-created", "secret_key": "bob-secret",
		"is_active": true, "callback": null, "retry_countdown_config": {"choice": "fixed", "kwargs": {"seconds": 60}},
		"additional_headers": {"X-Api-Key": "k-123", "X-Tenant": "t1"},
		"config": {"auth": {"auth_type": "basic", "username": "shop"}},
		"created_date": "2021-01-01T09:00:00.000000Z", "modified_date": "2021-01-02T09:00:00.000000Z"}`)
	wantJSON(t, "hook 2", hooks[receiver.URL+"/packages"], `{
		"event_type": "package-created", "secret_key": "bob-secret-2", "is_active": true, "callback": "fast",
		"retry_countdown_config": {"choice": "linear", "kwargs": {"base": 60, "limit": 600}}}`)
	wantJSON(t, "hook 3", hooks["https://hooks.example.com/cb"], `{
		"secret_key": null, "is_active": false, "callback": "myapp.hooks.on_delivery",
		"retry_countdown_config": {"choice": "exponential", "kwargs": {"base": 2, "limit": 3600}}}`)
	if r, _ := hooks["https://hooks.example.com/cb"]["disabled_reason"].(string); !strings.Contains(r, "not registered by any plugin") {
		t.Errorf("hook 3 disabled_reason %q", r)
	}
	// The password is write-only in the API: the store has it, sealed.
	all := webhook.Scope{All: true}
	h1, err := n.Store.Webhook(ctx, all, int64(hooks[receiver.URL+"/orders"]["id"].(float64)))
	if err != nil {
		t.Fatal(err)
	}
	if ba, ok := h1.BasicAuth(); !ok || ba != (webhook.BasicAuth{Username: "shop", Password: "pw-1"}) || h1.UserID != bob.ID {
		t.Errorf("hook 1 auth %+v user %d", ba, h1.UserID)
	}
	var sealed string
	if err := n.Store.DB().QueryRowContext(ctx, "SELECT secret_key FROM webhooks WHERE id = ?", h1.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if sealed == "bob-secret" || sealed == "" {
		t.Errorf("secret_key stored %q, want it sealed", sealed)
	}
	n.do(t, "GET", "/whisperer/hooks/", aliceKey, nil, 200, &page)
	byURL := map[string]map[string]any{}
	for _, h := range page.Results {
		byURL[h["target_url"].(string)] = h
	}
	wantJSON(t, "hook 4", byURL["https://admin.example.com/all"], `{"is_active": false, "disabled_reason": "deactivated by its owner",
		"retry_countdown_config": {"choice": "random", "kwargs": {"min_value": 1, "max_value": 10}}}`)
	wantJSON(t, "hook 5", byURL["https://carol.example.com/huge"], `{"is_active": false}`)
	h5, err := n.Store.Webhook(ctx, all, int64(byURL["https://carol.example.com/huge"]["id"].(float64)))
	if err != nil {
		t.Fatal(err)
	}
	if h5.RetryCountdown.Choice != "random" || !jsonEqual(h5.RetryCountdown.Kwargs, []byte(`{"min_value": 0, "max_value": 9223372036854775807}`)) {
		t.Errorf("hook 5 countdown kept as %s %s", h5.RetryCountdown.Choice, h5.RetryCountdown.Kwargs)
	}
	wantJSON(t, "hook 7", byURL["https://dave.example.com/in"], `{"is_active": true, "config": {"auth": {"auth_type": "basic", "username": "dave"}}}`)

	// Events: history as it was; the undelivered ones queued again and
	// delivered to the receiver, signed and with the hook's headers.
	var ev map[string]any
	n.do(t, "GET", "/whisperer/hook_events/11111111111141118111111111111111/", bobKey, nil, 200, &ev)
	wantJSON(t, "event 1", ev, `{"uuid": "11111111111141118111111111111111", "event_type": "order-created",
		"request_payload": {"event": {"type": "order-created", "uuid": "11111111111141118111111111111111"}, "payload": {"id": 1, "total": "9.90"}},
		"response_content": "ok", "response_http_status": 200, "delivered": true, "retry_count": 2, "state": "delivered",
		"request_datetimes": ["2022-03-01T12:01:00.000000Z", "2022-03-01T12:00:00.000000Z"],
		"created_date": "2022-03-01T12:00:00.000000Z", "modified_date": "2022-03-01T12:01:00.000000Z"}`)
	atts, _ := ev["attempts"].([]any)
	if len(atts) != 2 {
		t.Fatalf("event 1 attempts: %v", ev["attempts"])
	}
	wantJSON(t, "event 1 last attempt", atts[0].(map[string]any), `{"attempted_at": "2022-03-01T12:01:00.000000Z",
		"status": 200, "response_body": "ok", "error": ""}`)
	wantJSON(t, "event 1 first attempt", atts[1].(map[string]any), `{"attempted_at": "2022-03-01T12:00:00.000000Z",
		"status": null, "error": "imported from dj-whisperer, which kept only the last response"}`)
	n.do(t, "GET", "/whisperer/hook_events/55555555555545558555555555555555/", bobKey, nil, 200, &ev)
	wantJSON(t, "event 5", ev, `{"state": "delivered", "response_http_status": 202, "response_content": "thanks", "retry_count": 1}`)
	requeued := []string{"22222222222242228222222222222222", "33333333333343338333333333333333", "44444444444444448444444444444444"}
	poll.UntilNil(t, 20*time.Second, func() error {
		for _, u := range requeued {
			n.do(t, "GET", "/whisperer/hook_events/"+u+"/", bobKey, nil, 200, &ev)
			if ev["state"] != "delivered" {
				return notYet(u, "is", ev["state"].(string))
			}
		}
		return nil
	})
	wantJSON(t, "event 2 redelivered", ev, `{"delivered": true, "response_http_status": 204}`)
	mu.Lock()
	deliveries := slices.Clone(got)
	mu.Unlock()
	if len(deliveries) != 3 {
		t.Fatalf("receiver got %d deliveries, want the 3 requeued: %+v", len(deliveries), deliveries)
	}
	for _, d := range deliveries {
		if !slices.Contains(requeued, d.uuid) {
			t.Errorf("delivered %s, not requeued", d.uuid)
		}
		if d.path == "/orders" {
			wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("shop:pw-1"))
			if d.auth != wantAuth || d.apiKey != "k-123" {
				t.Errorf("delivery to /orders: Authorization %q X-Api-Key %q", d.auth, d.apiKey)
			}
		}
		if d.uuid == "22222222222242228222222222222222" {
			wantJSON(t, "delivered body", d.body, `{"event": {"type": "order-created", "uuid": "22222222222242228222222222222222"}, "payload": {"id": 2}}`)
		}
	}

	// A rerun imports nothing twice.
	before = rowCounts(t, n.Store)
	again := runImport(t, cfg, app.ImportOptions{From: from, Events: true, Requeue: true})
	if after := rowCounts(t, n.Store); !mapsEqual(before, after) {
		t.Fatalf("rerun wrote: %v → %v", before, after)
	}
	if again.Users != (djimport.Counts{Existing: 4}) || again.Tokens != (djimport.Counts{Existing: 4}) ||
		again.Hooks != (djimport.Counts{Existing: 7}) || again.Events != (djimport.Counts{Existing: 5}) || again.Requeued != 0 {
		t.Fatalf("rerun report: %+v", again)
	}
}

// wantJSON fails unless every key of want is in got with an equal value.
func wantJSON(t *testing.T, what string, got map[string]any, want string) {
	t.Helper()
	var w map[string]any
	dec := json.NewDecoder(strings.NewReader(want))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("%s: bad want: %v", what, err)
	}
	for k, v := range w {
		wb, _ := json.Marshal(v)
		gb, _ := json.Marshal(got[k])
		if !jsonEqual(wb, gb) {
			t.Errorf("%s: %s = %s, want %s", what, k, gb, wb)
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	da, db := json.NewDecoder(strings.NewReader(string(a))), json.NewDecoder(strings.NewReader(string(b)))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestImportDJWhispererHostile feeds the importer a source holding absurd
// values (a database edited by hand, or by a bug): each bad row is
// skipped or flagged with a clear reason, the good ones are imported, and
// nothing crashes.
func TestImportDJWhispererHostile(t *testing.T) {
	huge := `'{` + strings.Repeat(`"X-A": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", `, 3000) + `"X-B": "b"}'`
	var many strings.Builder
	for i := range 60 {
		if i > 0 {
			many.WriteString(", ")
		}
		many.WriteString(`"X-H` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `": "v"`)
	}
	fixed := `'{"choice": "fixed", "kwargs": {"seconds": 1}}'`
	from, _ := djSource(t, true,
		// Loosen the schema as a hand-edited database might be.
		`ALTER TABLE whisperer_webhook ALTER COLUMN additional_headers TYPE text, ALTER COLUMN additional_headers DROP NOT NULL,
			ALTER COLUMN config TYPE text, ALTER COLUMN config DROP NOT NULL, ALTER COLUMN retry_countdown_config DROP NOT NULL`,
		`ALTER TABLE whisperer_webhookevent ALTER COLUMN request_payload TYPE text, ALTER COLUMN request_payload DROP NOT NULL,
			ALTER COLUMN response_http_status DROP NOT NULL, ALTER COLUMN delivered DROP NOT NULL, DROP CONSTRAINT whisperer_webhookevent_retry_count_check`,
		`INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined) VALUES
			(1, '!', false, 'h', '', '', '', false, true, now()), (2, '!', false, '   ', '', '', '', false, true, now()),
			(3, '!', true, 'root', '', '', '', false, true, now())`,
		`INSERT INTO authtoken_token (key, created, user_id) VALUES ('has space in it', now(), 1)`,
		`INSERT INTO whisperer_webhook (id, created_date, modified_date, target_url, is_active, secret_key, event_type, callback,
			retry_countdown_config, additional_headers, config, user_id) VALUES
			(1, now(), now(), 'https://x.example/1', true, 's', 'e', NULL, `+fixed+`, `+huge+`, '{}', 1),
			(2, now(), now(), 'https://x.example/2', true, 's', 'e', NULL, `+fixed+`, '{`+many.String()+`}', '{}', 1),
			(3, now(), now(), 'https://x.example/3', true, 's', 'e', NULL, `+fixed+`, '{}', '{not json', 1),
			(4, now(), now(), 'https://x.example/4', true, NULL, 'e', NULL, `+fixed+`, NULL, NULL, 1),
			(5, now(), now(), 'https://x.example/5', true, 's', 'e', NULL, '{"choice": "fibonacci", "kwargs": {"n": 3}}', '{}', '{}', 1),
			(6, now(), now(), 'not a url', true, 's', 'e', NULL, `+fixed+`, '{}', '{}', 1),
			(7, now(), now(), 'https://x.example/7', true, 's', 'e', NULL, `+fixed+`, '{"X-Evil": "a\r\nInjected: yes"}', '{}', 1),
			(8, now(), now(), 'https://x.example/8', true, 's', 'e', NULL, NULL, '[1, 2]', '"config"', 1),
			(9, now(), now(), 'https://x.example/9', true, 's', 'e', NULL, `+fixed+`, '{"Webhook-Id": "forged"}', '{"auth": {"auth_type": "token"}}', 1),
			(10, now(), now(), 'https://x.example/10', true, 's', 'e', NULL, `+fixed+`, '{}', '{}', 2),
			(11, now(), now(), 'https://x.example/11', true, 's', 'whisperer.event.given_up', NULL, `+fixed+`, '{}', '{}', 1),
			(12, now(), now(), 'https://x.example/12', true, 's', 'whisperer.event.given_up', NULL, `+fixed+`, '{}', '{}', 3),
			(13, now(), now(), 'https://x.example/13', true, 's', 'whisperer.mine', NULL, `+fixed+`, '{}', '{}', 3)`,
		`INSERT INTO whisperer_webhookevent (id, created_date, modified_date, uuid, request_payload, response_content, response_http_status,
			delivered, request_datetimes, retry_count, webhook_id) VALUES
			(1, now(), now(), gen_random_uuid(), '{"payload": "`+strings.Repeat("x", 10<<20)+`"}', '', 200, true, '{}', 1, 4),
			(2, now(), now(), gen_random_uuid(), '{"event": ', '', 200, true, '{}', 1, 4),
			(3, now(), now(), 'aaaaaaaa-0000-4000-8000-000000000003', NULL, '', NULL, NULL, ARRAY[NULL, now()]::timestamptz[], -5, 4),
			(4, now(), now(), 'aaaaaaaa-0000-4000-8000-000000000004', '{"event": {}, "payload": [1]}', repeat('r', 200000), 2147483647, false,
				'{}', 2147483647, 4),
			(5, now(), now(), gen_random_uuid(), '{}', '', 200, true, '{}', 1, 1)`)

	var cfg *config.Config
	n := startNode(t, store.SQLite, nil, func(c *config.Config) { cfg = c })
	rep, err := app.ImportDJWhisperer(context.Background(), cfg, app.NewLogger(config.Log{Level: "error"}, io.Discard),
		app.ImportOptions{From: from, Events: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Users != (djimport.Counts{Imported: 2, Skipped: 1}) || rep.Tokens != (djimport.Counts{Skipped: 1}) ||
		rep.Hooks != (djimport.Counts{Imported: 3, Skipped: 10}) || rep.Events != (djimport.Counts{Imported: 2, Skipped: 3}) {
		t.Errorf("report: %+v", rep)
	}
	probs := problemsOf(rep)
	for key, want := range map[string]string{
		"auth_user 2": "skipped: the username is empty",
		`authtoken_token of user 1 starting "has spac"`: "skipped: the key is not 1 to 40 printable ASCII characters",
		"whisperer_webhook 1":                           "skipped: additional_headers: 123012 bytes, more than the 65536",
		"whisperer_webhook 2":                           "additional_headers: Ensure this field has no more than 50 headers.",
		"whisperer_webhook 3":                           "skipped: config: not valid JSON",
		"whisperer_webhook 5":                           `imported inactive: retry_countdown_config is refused: retry_countdown_config.choice: "fibonacci" is not a valid choice.`,
		"whisperer_webhook 6":                           "target_url: Enter a valid URL.",
		"whisperer_webhook 7":                           "Header values may not contain line breaks.",
		"whisperer_webhook 8":                           "additional_headers: Expected a dictionary of items",
		"whisperer_webhook 9":                           `"Webhook-Id" is set by Whisperer`,
		"whisperer_webhook 10":                          "its user 2 was not imported",
		// A plain user's hook on an operational type would read every
		// tenant's operational events; a superuser (admin) may subscribe.
		"whisperer_webhook 11":     `skipped: event_type: only admins and publishers may subscribe to Whisperer's operational events`,
		"whisperer_webhook 13":     `skipped: event_type: "whisperer.mine" is not one of Whisperer's operational events`,
		"whisperer_webhookevent 1": "request_payload is 10485775 bytes, more than server.max_body_bytes",
		"whisperer_webhookevent 2": "request_payload is not valid JSON",
	} {
		if p, ok := probs[key]; !ok || !strings.Contains(p.Action+": "+p.Reason, want) {
			t.Errorf("%s: got %+v, want %q", key, p, want)
		}
	}
	if p := probs["whisperer_webhook 9"]; !strings.Contains(p.Reason, "config.auth.auth_type") {
		t.Errorf("hook 9: %+v, want config.auth.auth_type named too", p)
	}
	if p, ok := probs["whisperer_webhook 12"]; ok {
		t.Errorf("the admin's hook on an operational type: %+v, want imported", p)
	}
	// Event 5 belongs to a skipped hook.
	if p := probs["whisperer_webhookevent 5"]; p.Reason != "its webhook 1 was not imported" || len(p.UUID) != 32 {
		t.Errorf("event of the skipped hook 1: %+v", p)
	}
	// The rows with nulls and out-of-range numbers came in usable.
	ctx := context.Background()
	h4, err := n.Store.Webhook(ctx, webhook.Scope{All: true}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if h4.TargetURL != "https://x.example/4" || h4.SecretKey != "" || len(h4.AdditionalHeaders) != 0 || !h4.IsActive {
		t.Errorf("hook 4: %+v", h4)
	}
	j3, err := n.Store.Event(ctx, webhook.Scope{All: true}, "aaaaaaaa000040008000000000000003")
	if err != nil {
		t.Fatal(err)
	}
	if string(j3.Event.Payload) != "null" || j3.Event.RetryCount != 2 || len(j3.Event.Attempts) != 1 || j3.Event.ResponseHTTPStatus != nil {
		t.Errorf("event 3: %+v", j3.Event)
	}
	j4, err := n.Store.Event(ctx, webhook.Scope{All: true}, "aaaaaaaa000040008000000000000004")
	if err != nil {
		t.Fatal(err)
	}
	if j4.Event.RetryCount != 0 || j4.Event.ResponseHTTPStatus != nil || len(j4.Event.ResponseContent) != cfg.Delivery.MaxResponseBytes ||
		string(j4.Event.Payload) != "[1]" {
		t.Errorf("event 4: retry %d status %v response %d bytes payload %s", j4.Event.RetryCount, j4.Event.ResponseHTTPStatus,
			len(j4.Event.ResponseContent), j4.Event.Payload)
	}
}
