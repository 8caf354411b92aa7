// Command gopanic is a hostile Go guest for the plugin host's tests:
// countdown "panic" panics inside the SDK (recovered: an error, the instance
// lives); callback "crash" panics on another goroutine, which no recover can
// catch (the Go runtime exits: the instance is discarded); callback "sleep"
// sleeps for an hour (the host's no-op sleep makes it return at once);
// callback "ok" succeeds; filter "panic" and transform "panic" panic inside
// the SDK (recovered: errors).
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o gopanic.wasm ./core/internal/plugin/testdata/gopanic
package main

import (
	"errors"
	"runtime"
	"time"

	"github.com/whisperer/whisperer/sdk"
)

func init() {
	sdk.RegisterCountdown("panic", func(int, sdk.Kwargs) int { panic("boom in countdown") }, nil)
	sdk.RegisterCallback("crash", func(*sdk.Delivery) error {
		done := make(chan struct{})
		go func() {
			defer close(done)
			panic("boom on a goroutine")
		}()
		<-done
		runtime.Gosched()
		return nil
	})
	sdk.RegisterCallback("sleep", func(*sdk.Delivery) error {
		time.Sleep(time.Hour)
		return nil
	})
	sdk.RegisterCallback("fail", func(*sdk.Delivery) error { return errors.New("receiver said no") })
	sdk.RegisterCallback("ok", func(*sdk.Delivery) error { return nil })
	sdk.RegisterFilter("panic", func(sdk.Kwargs, *sdk.Event) (bool, error) { panic("boom in filter") }, nil)
	sdk.RegisterTransform("panic", func(sdk.Kwargs, *sdk.Request) (sdk.Result, error) { panic("boom in transform") }, nil)
}

func main() {}
