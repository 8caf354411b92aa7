package main

import (
	"encoding/json"
	"testing"

	"github.com/whisperer/whisperer/sdk"
)

// These run natively (go test ./examples/...): no wasm needed to test a plugin.

func TestChat(t *testing.T) {
	req := sdk.Request{EventType: "package-created", UUID: "6f1c2a0e", HookID: 7, RetryCount: 2,
		URL:     "https://hooks.example.com/x",
		Payload: json.RawMessage(`{"id": 1, "name": "pkg \"one\"", "tags": ["a"]}`),
		Body:    []byte(`{"event":{"type":"package-created"},"payload":{"id":1}}`)}
	for _, tc := range []struct{ kwargs, want string }{
		{`{}`, `{"text":"package-created event 6f1c2a0e"}`},
		{`{"template": "{event_type}: {payload.name} #{payload.id} {payload.tags} {payload.nope}", "key": "content"}`,
			`{"content":"package-created: pkg \"one\" #1 [\"a\"] "}`},
		{`{"template": "hook {hook_id} try {retry_count} to {url}"}`,
			`{"text":"hook 7 try 2 to https://hooks.example.com/x"}`},
	} {
		clean, errs, err := sdk.RunTransformValidate("chat", tc.kwargs)
		if err != nil || errs != nil {
			t.Fatalf("validate %s: %v %v", tc.kwargs, errs, err)
		}
		res, err := sdk.RunTransform("chat", clean, req, map[string]string{"content-type": "application/json"})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Body) != tc.want || res.Cancel || res.Headers != nil {
			t.Errorf("chat(%s) = %s, want %s", tc.kwargs, res.Body, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for kwargs, want := range map[string]string{
		`{"template": "{nope}"}`: `{"template":["Unknown placeholder {nope}."]}`,
		`{"template": 5}`:        ``, // DRF's CharField takes a number as its text
		`{"key": ""}`:            `{"key":["This field may not be blank."]}`,
		`[]`:                     `{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}`,
	} {
		_, errs, err := sdk.RunTransformValidate("chat", kwargs)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if errs != nil {
			b, _ := json.Marshal(errs)
			got = string(b)
		}
		if got != want {
			t.Errorf("validate %s = %s, want %s", kwargs, got, want)
		}
	}
	// What the server passes when a hook's transform has no kwargs.
	clean, errs, err := sdk.RunTransformValidate("chat", `{}`)
	if err != nil || errs != nil || clean != `{"key":"text","template":"{event_type} event {uuid}"}` {
		t.Errorf("validate {} = %s, %v, %v", clean, errs, err)
	}
}
