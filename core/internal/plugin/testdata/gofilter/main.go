// Command gofilter is examples/filter's field-equals in Go, for the
// benchmarks: filter "field-equals" delivers when the payload's top-level
// member kwargs["field"] is, as written, kwargs["equals"]; transform
// "noop" keeps the request as it is (the SDK's share of a transform).
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o gofilter.wasm ./core/internal/plugin/testdata/gofilter
package main

import (
	"bytes"

	"github.com/whisperer/whisperer/sdk"
)

func init() {
	sdk.RegisterFilter("field-equals", func(kw sdk.Kwargs, ev *sdk.Event) (bool, error) {
		v, ok := ev.Field(kw.String("field"))
		return ok && bytes.Equal(v, kw["equals"]), nil
	}, sdk.Rules{"field": sdk.String(), "equals": sdk.String()})
	sdk.RegisterTransform("noop", func(sdk.Kwargs, *sdk.Request) (sdk.Result, error) {
		return sdk.Result{Body: []byte(`{"text":"x"}`)}, nil
	}, nil)
	sdk.RegisterTransform("keep", func(sdk.Kwargs, *sdk.Request) (sdk.Result, error) { return sdk.Result{}, nil }, nil)
}

func main() {}
