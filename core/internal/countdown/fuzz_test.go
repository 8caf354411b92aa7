package countdown_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/whisperer/whisperer/core/internal/countdown"
	"github.com/whisperer/whisperer/core/internal/webhook"
)

// FuzzCountdownKwargs feeds arbitrary kwargs and retry counts to every
// built-in countdown, both through the validator (what the API stores)
// and as they are (what an older release may have stored). Nothing may
// panic, a validator error is DRF-shaped, and every wait is within
// [0, MaxWait]; validated kwargs never fail to compute a wait.
//
//	go test -run='^$' -fuzz=FuzzCountdownKwargs -fuzztime=60s ./core/internal/countdown/
func FuzzCountdownKwargs(f *testing.F) {
	for _, seed := range []string{
		`{"seconds": 60}`, `{"base": 2}`, `{"base": 3, "limit": 10}`, `{"base": 60, "limit": null}`,
		`{"min_value": 0, "max_value": 9223372036854775807}`,
		`{"min_value": "1.0", "max_value": "2592000"}`,
		`{"seconds": -9223372036854775808}`, `{"base": 1e400}`, `{"base": "   7.000 "}`,
		`{"seconds": true}`, `[]`, `null`, ``, `{`, "\xff",
	} {
		for _, n := range []int{0, 1, 18, 1 << 30, -1} {
			f.Add(seed, n)
		}
	}
	r := countdown.NewRegistry()
	choices := []string{"fixed", "linear", "exponential", "random"}
	f.Fuzz(func(t *testing.T, kwargs string, retry int) {
		for _, choice := range choices {
			raw := webhook.CountdownConfig{Choice: choice, Kwargs: json.RawMessage(kwargs)}
			if w, err := r.Wait(ctx, raw, retry); err == nil && (w < 0 || w > countdown.MaxWait) {
				t.Fatalf("%s %q retry %d: stored kwargs wait %s", choice, kwargs, retry, w)
			}
			valid, err := r.Validate(ctx, raw)
			var verr *webhook.ValidationError
			switch {
			case errors.As(err, &verr):
				if _, err := json.Marshal(verr.Fields); err != nil || len(verr.Fields) == 0 {
					t.Fatalf("%s %q: error document %v (%v)", choice, kwargs, verr.Fields, err)
				}
				continue
			case err != nil:
				t.Fatalf("%s %q: %v", choice, kwargs, err)
			}
			w, err := r.Wait(ctx, valid, retry)
			if err != nil || w < 0 || w > countdown.MaxWait {
				t.Fatalf("%s %q (clean %s) retry %d: Wait = %s, %v", choice, kwargs, valid.Kwargs, retry, w, err)
			}
		}
	})
}
