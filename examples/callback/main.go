// Command callback is a Whisperer plugin registering the post-delivery
// callback "foo.bar.app.callback" (the name a hook's "callback" field
// uses). It logs every delivery attempt through the host's structured log.
//
// Build it into the plugin directory:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugins/callback.wasm ./examples/callback
package main

import (
	"fmt"

	"github.com/whisperer/whisperer/sdk"
)

func init() {
	sdk.SetName("callback")
	sdk.RegisterCallback("foo.bar.app.callback", Callback)
}

// Callback logs the outcome of one delivery attempt.
func Callback(d *sdk.Delivery) error {
	outcome := fmt.Sprintf("status %d", d.Response.Status)
	if d.Response.Error != "" {
		outcome = "error: " + d.Response.Error
	}
	sdk.Logf(sdk.LevelInfo, "delivery of %s event %s to %s (attempt %d, delivered=%t): %s in %.1fms",
		d.EventType, d.EventUUID, d.Webhook.TargetURL, d.RetryCount, d.Delivered, outcome, d.Response.DurationMS)
	return nil
}

// main is empty: built with -buildmode=c-shared the module is a WASI
// reactor that the host calls through the SDK's exports.
func main() {}
