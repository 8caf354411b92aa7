package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/internal/store/storetest"
	"github.com/whisperer/whisperer/internal/poll"
)

// The hooks list shows each hook's share of delivered requests over the
// last day, from the hourly rollups the dispatcher's results add to.
func TestHooksListSuccessRatio(t *testing.T) {
	n := startNode(t)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(ok.Close)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(bad.Close)
	good := storetest.Hook(t, n.Store, n.alice.ID, eventType, ok.URL+"/good")
	failing := storetest.Hook(t, n.Store, n.alice.ID, eventType, bad.URL+"/failing")
	idle := storetest.Hook(t, n.Store, n.alice.ID, "other-type", ok.URL+"/idle")
	for i := range 3 {
		n.publish(t, eventType, strconv.Itoa(i))
	}
	b := n.browser(t)
	b.signIn(n.aliceKey)
	cell := func(body string, id int64) string {
		re := regexp.MustCompile(`<a href="/hooks/` + strconv.FormatInt(id, 10) + `">[\s\S]*?<td class="success">([^<]*)</td>`)
		if m := re.FindStringSubmatch(body); m != nil {
			return m[1]
		}
		return ""
	}
	poll.UntilNil(t, 15*time.Second, func() error {
		p := b.get("/hooks")
		if g, f := cell(p.body, good.ID), cell(p.body, failing.ID); g != "100% of 3" || f != "0% of 3" {
			return fmt.Errorf("good %q, failing %q", g, f)
		}
		if i := cell(p.body, idle.ID); i != "no requests" {
			t.Fatalf("idle hook: %q", i)
		}
		return nil
	})
}
