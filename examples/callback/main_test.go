package main

import (
	"testing"

	"github.com/whisperer/whisperer/sdk"
)

func TestCallback(t *testing.T) {
	doc := `{"event_type":"package-created","event_uuid":"0123456789abcdef0123456789abcdef","retry_count":1,
		"delivered":true,"webhook":{"id":1,"target_url":"https://example.com/","event_type":"package-created","callback":"foo.bar.app.callback"},
		"response":{"status":200,"headers":{},"body":"ok","error":"","duration_ms":12.5},"instance":{"id":1},"payload":{}}`
	if err := sdk.RunCallback("foo.bar.app.callback", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if err := sdk.RunCallback("foo.bar.app.callback", []byte("not json")); err == nil {
		t.Fatal("want an error for a bad document")
	}
}
