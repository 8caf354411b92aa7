// Command callback is a Whisperer plugin registering the post-delivery
// callback "foo.bar.app.callback" (the name a hook's "callback" field
// uses). It logs every delivery attempt through the host's structured log.
//
// Build it into the plugin directory:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugins/callback.wasm ./examples/callback
package main

import (
	"strconv"

	"github.com/whisperer/whisperer/sdk"
)

func init() {
	sdk.SetName("callback")
	sdk.RegisterCallback("foo.bar.app.callback", Callback)
}

// Callback logs the outcome of one delivery attempt. It concatenates rather
// than calling fmt: inside wasm, fmt's byte-by-byte formatting costs tens of
// microseconds per line (sdk/ABI.md §8), and a callback runs on every
// attempt.
func Callback(d *sdk.Delivery) error {
	if !sdk.LogEnabled(sdk.LevelInfo) {
		return nil
	}
	outcome := "status " + strconv.Itoa(d.Response.Status)
	if d.Response.Error != "" {
		outcome = "error: " + d.Response.Error
	}
	sdk.Log(sdk.LevelInfo, "delivery of "+d.EventType+" event "+d.EventUUID+" to "+d.Webhook.TargetURL+
		" (attempt "+strconv.Itoa(d.RetryCount)+", delivered="+strconv.FormatBool(d.Delivered)+"): "+
		outcome+" in "+strconv.FormatFloat(d.Response.DurationMS, 'f', 1, 64)+"ms")
	return nil
}

// main is empty: built with -buildmode=c-shared the module is a WASI
// reactor that the host calls through the SDK's exports.
func main() {}
