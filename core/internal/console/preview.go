package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// maxPreviewAttempts bounds the preview's table whatever
// delivery.max_retries says.
const maxPreviewAttempts = 100

// previewData is a countdown's retry schedule, as `whisperer countdown
// preview` prints it: the wait before each attempt after the first.
type previewData struct {
	Choice string
	Rows   []previewRow
	// Errors say why there is no schedule: the validator's messages.
	Errors []string
	Chart  chart
	Random bool
}

type previewRow struct {
	Attempt int
	Wait    string
	// At is the time since the first attempt.
	At string
}

// chart is a bar chart of the waits, drawn as SVG on the server: the
// template writes these numbers as attributes (no style, no script).
type chart struct {
	Width, Height int
	Bars          []bar
	Max           string
}

type bar struct {
	X, Y, W, H float64
	Label      string
}

const chartW, chartH = 320, 100

// schedule validates f's countdown with the registry, as the API does,
// and computes its waits, as the dispatcher does (and PreviewCountdown
// for the CLI).
func (h *Handler) schedule(r *http.Request, f *countdownForm) previewData {
	p := previewData{Choice: f.Choice, Random: f.Choice == "random"}
	if h.deps.Countdowns == nil {
		p.Errors = []string{"No countdowns are registered on this node."}
		return p
	}
	kw, msg := f.kwargs()
	if msg != "" {
		p.Errors = []string{"kwargs: " + msg}
		return p
	}
	cd, err := h.deps.Countdowns.Validate(r.Context(), webhook.CountdownConfig{Choice: f.Choice, Kwargs: kw})
	var verr *webhook.ValidationError
	switch {
	case errors.As(err, &verr):
		b, _ := json.Marshal(verr.Fields)
		var doc any
		_ = json.Unmarshal(b, &doc)
		fe := fieldErrors{}
		fe.flatten("", doc)
		p.Errors = fe.All()
		return p
	case err != nil:
		p.Errors = []string{"The countdown could not check these kwargs: " + excerpt(err.Error(), 300)}
		return p
	}
	var waits []time.Duration
	var total time.Duration
	for n := 0; n < min(h.cfg.MaxRetries, maxPreviewAttempts)-1; n++ {
		wait, err := h.deps.Countdowns.Wait(r.Context(), cd, n)
		if err != nil {
			p.Errors = []string{fmt.Sprintf("After %d retries: %s", n, excerpt(err.Error(), 300))}
			return p
		}
		total += wait
		waits = append(waits, wait)
		p.Rows = append(p.Rows, previewRow{Attempt: n + 2, Wait: human(wait), At: human(total)})
	}
	p.Chart = drawBars(waits)
	return p
}

// drawBars charts the waits, the longest full height.
func drawBars(waits []time.Duration) chart {
	values, labels := make([]float64, len(waits)), make([]string, len(waits))
	var longest time.Duration
	for i, w := range waits {
		values[i], labels[i] = float64(w), fmt.Sprintf("attempt %d: wait %s", i+2, human(w))
		longest = max(longest, w)
	}
	return drawSeries(values, float64(longest), labels, human(longest))
}

// drawSeries is a bar per value, top the full height (labelled topLabel);
// each bar's title is its label.
func drawSeries(values []float64, top float64, labels []string, topLabel string) chart {
	c := chart{Width: chartW, Height: chartH, Max: topLabel}
	if len(values) == 0 {
		return c
	}
	step := float64(chartW) / float64(len(values))
	for i, v := range values {
		hgt := 0.0
		if top > 0 {
			hgt = float64(chartH) * min(v/top, 1)
		}
		hgt = max(hgt, 1) // a zero is still a visible line
		c.Bars = append(c.Bars, bar{X: float64(i) * step, Y: chartH - hgt, W: max(step*0.8, 1), H: hgt, Label: labels[i]})
	}
	return c
}

// human writes d in whole seconds, dropping zero units: "1h", "2m30s".
func human(d time.Duration) string {
	d = d.Round(time.Second)
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		d -= days * 24 * time.Hour
	}
	for _, u := range []struct {
		d time.Duration
		s string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.s)
			d -= n * u.d
		}
	}
	return b.String()
}
