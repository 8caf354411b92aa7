// Command custom-countdown is the documented CustomRetryCountdown as a
// Whisperer plugin: countdown key "custom" with a "factor" kwarg (an integer
// ≥ 1); it waits 2*factor*retry_count seconds when retry_count is even, else
// factor*retry_count.
//
// Build it into the plugin directory:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugins/custom-countdown.wasm ./examples/custom-countdown
package main

import "github.com/whisperer/whisperer/sdk"

func init() {
	sdk.SetName("custom-countdown")
	sdk.RegisterCountdown("custom", Custom, sdk.Rules{"factor": sdk.Int().Min(1)})
}

// Custom is dj-whisperer's documented CustomRetryCountdown.get_value.
func Custom(retryCount int, kw sdk.Kwargs) int {
	factor := kw.Int("factor")
	if retryCount%2 == 0 {
		return 2 * factor * retryCount
	}
	return factor * retryCount
}

// main is empty: built with -buildmode=c-shared the module is a WASI
// reactor that the host calls through the SDK's exports.
func main() {}
