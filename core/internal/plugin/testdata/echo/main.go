// Command echo is a Go guest for the plugin host's tests: callback "echo"
// logs, at info, the Delivery it decoded as JSON (Echo), and transform
// "echo" answers the Request it decoded as JSON (RequestEcho), so a test
// can compare what the SDK read from the callback or transform record with
// what it reads from the document.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o echo.wasm ./core/internal/plugin/testdata/echo
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/whisperer/whisperer/sdk"
)

// Echo is what the guest logs; long strings are replaced by their length
// and digest so that a line stays under the host's log message limit.
type Echo struct {
	D        sdk.Delivery
	Instance string
	Payload  string
	Raw      string
	NilHdrs  bool
}

// Digest shortens s when it is long.
func Digest(s string) string {
	if len(s) <= 256 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// View is d as the guest logs it.
func View(d *sdk.Delivery) Echo {
	e := Echo{D: *d, Instance: string(d.Instance), Payload: Digest(string(d.Payload)), Raw: Digest(string(d.Raw)),
		NilHdrs: d.Response.Headers == nil}
	e.D.Instance, e.D.Payload, e.D.Raw = nil, nil, nil
	for _, s := range []*string{&e.D.EventType, &e.D.EventUUID, &e.D.Webhook.TargetURL, &e.D.Webhook.EventType,
		&e.D.Webhook.Callback, &e.D.Response.Body, &e.D.Response.Error} {
		*s = Digest(*s)
	}
	if d.Response.Headers != nil {
		e.D.Response.Headers = map[string]string{}
		for k, v := range d.Response.Headers {
			e.D.Response.Headers[Digest(k)] = Digest(v)
		}
	}
	return e
}

func init() {
	sdk.RegisterCallback("echo", func(d *sdk.Delivery) error {
		b, err := json.Marshal(View(d))
		if err != nil {
			return err
		}
		sdk.Log(sdk.LevelInfo, string(b))
		return nil
	})
}

// RequestEcho is what transform "echo" answers: the request as decoded.
type RequestEcho struct {
	EventType, UUID, URL string
	HookID               int64
	RetryCount           int
	Headers              map[string]string
	Payload, Body        string
	Field                string // the payload's member "id", as written
}

func echoRequest(_ sdk.Kwargs, req *sdk.Request) (sdk.Result, error) {
	id, _ := req.Field("id")
	b, err := json.Marshal(RequestEcho{EventType: req.EventType, UUID: req.UUID, URL: req.URL, HookID: req.HookID,
		RetryCount: req.RetryCount, Headers: req.Headers(), Payload: string(req.Payload), Body: string(req.Body), Field: string(id)})
	return sdk.Result{Body: b, BodyJSON: true}, err
}

func init() { sdk.RegisterTransform("echo", echoRequest, nil) }

func main() {}
