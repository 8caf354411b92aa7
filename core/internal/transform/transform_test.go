package transform_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/whisperer/whisperer/core/internal/transform"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// Apply holds a transform's output to the bounds: every hostile answer is
// a *webhook.TransformError naming what is wrong, never a panic.
func TestApplyRefusesBadOutput(t *testing.T) {
	many := map[string]string{}
	for i := range webhook.MaxHeaders + 1 {
		many[fmt.Sprintf("X-H%d", i)] = "v"
	}
	big := map[string]string{}
	for i := range 3 {
		big[fmt.Sprintf("X-Big%d", i)] = strings.Repeat("v", webhook.MaxHeaderValueLen)
	}
	for name, c := range map[string]struct {
		res  webhook.TransformResult
		err  error
		want string
	}{
		"error":        {err: errors.New("boom"), want: `transform "t" failed: boom`},
		"cancel":       {res: webhook.TransformResult{Cancel: true}, want: `cancelled by transform "t"`},
		"huge body":    {res: webhook.TransformResult{Body: make([]byte, webhook.MaxTransformBody+1)}, want: "more than 1048576"},
		"protected":    {res: webhook.TransformResult{Headers: map[string]string{"content_type": "x"}}, want: `"content_type", which is protected`},
		"bad name":     {res: webhook.TransformResult{Headers: map[string]string{"X Bad": "x"}}, want: "not a valid HTTP header name"},
		"line break":   {res: webhook.TransformResult{Headers: map[string]string{"X-A": "a\r\nX-Injected: 1"}}, want: "line break"},
		"long value":   {res: webhook.TransformResult{Headers: map[string]string{"X-A": strings.Repeat("v", webhook.MaxHeaderValueLen+1)}}, want: "more than 8192 bytes"},
		"many headers": {res: webhook.TransformResult{Headers: many}, want: "51 headers, more than 50"},
		"total size":   {res: webhook.TransformResult{Headers: big}, want: "more than 16384"},
	} {
		r := &transform.Registry{}
		res, fnErr := c.res, c.err
		_ = r.Register("test", "t", webhook.Transform{Apply: func(context.Context, json.RawMessage, *webhook.TransformInput) (webhook.TransformResult, error) {
			return res, fnErr
		}})
		_, err := r.Apply(context.Background(), webhook.TransformConfig{Name: "t"}, &webhook.TransformInput{Body: []byte("{}")})
		var te *webhook.TransformError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), c.want) || te.Cancelled != (name == "cancel") {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	// A kept body is the input's; an unregistered name fails.
	r := &transform.Registry{}
	_ = r.Register("test", "keep", webhook.Transform{Apply: func(context.Context, json.RawMessage, *webhook.TransformInput) (webhook.TransformResult, error) {
		return webhook.TransformResult{Headers: map[string]string{"X-Ok": "1"}}, nil
	}})
	if res, err := r.Apply(context.Background(), webhook.TransformConfig{Name: "keep"}, &webhook.TransformInput{Body: []byte(`{"a":1}`)}); err != nil || string(res.Body) != `{"a":1}` {
		t.Errorf("keep: %s %v", res.Body, err)
	}
	if _, err := r.Apply(context.Background(), webhook.TransformConfig{Name: "gone"}, &webhook.TransformInput{}); err == nil {
		t.Error("an unregistered transform applied")
	}
}
