// Package sdk is the Go SDK for Whisperer plugins: WebAssembly modules that
// add retry countdowns (with their kwargs validators) and post-delivery
// callbacks to a running server.
//
// A plugin is a main package that registers its functions in init and is
// built as a WASI reactor:
//
//	func init() {
//		sdk.RegisterCountdown("custom", Custom, sdk.Rules{"factor": sdk.Int().Min(1)})
//		sdk.RegisterCallback("foo.bar.app.callback", Notify)
//	}
//
//	func main() {}
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugins/custom.wasm .
//
// The SDK implements ABI v1 (sdk/ABI.md): it owns the exports, the memory
// the host writes inputs into, a recover in every export so a panic becomes
// an error rather than a dead instance, and the runtime.Gosched after
// exports that lets the guest's other goroutines run (the garbage
// collector's, and any the plugin starts).
//
// Outside wasm the same package compiles natively, so plugin functions can be
// unit-tested with go test, directly or through RunCountdown, RunValidate and
// RunCallback, which go through the same dispatch the exports use.
//
// Register functions only from init; the registry is not safe for
// concurrent mutation. The host calls an instance one call at a time.
package sdk
