package console

import (
	"fmt"
	"net/http"
	"time"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The overview: deliveries, success ratio and given-up events per bucket
// of the last hour or day, from the store's per-minute rollups (never a
// scan of the events), and, for admins, the queue's lag now (counts
// bounded by countLimit) and its history (the rollups' lag samples).

type overviewData struct {
	Range string // "hour" or "day"
	// Bucket is the bars' width in words.
	Bucket                   string
	Attempts, Ratio, GivenUp chart
	// QueueLag is the lag history (admins): the largest sample per bucket.
	QueueLag                   chart
	TotalAttempts, TotalGiven  int64
	TotalDelivered, TotalFails int64
	// Lag is the oldest due event's wait (admins), "" when none is due.
	Lag   string
	Admin bool
	// Due, Scheduled and Leased are the queue's counts, "1000+" from
	// countLimit on.
	Due, Scheduled, Leased string
}

func (h *Handler) overviewPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	d := overviewData{Range: r.URL.Query().Get("range")}
	span, bucket := time.Hour, time.Minute
	switch d.Range {
	case "", "hour":
		d.Range, d.Bucket = "hour", "minute"
	case "day":
		span, bucket, d.Bucket = 24*time.Hour, 15*time.Minute, "15 minutes"
	default:
		return &badRequest{"range must be hour or day."}
	}
	now := time.Now().UTC()
	first := now.Add(-span).Truncate(bucket)
	rows, err := h.deps.Store.Rollups(r.Context(), rq.scope, first)
	if err != nil {
		return err
	}
	n := int(span / bucket)
	sums := make([]webhook.Rollup, n+1)
	for _, x := range rows {
		i := int(x.Minute.Sub(first) / bucket)
		if i < 0 || i > n {
			continue
		}
		sums[i].Attempts += x.Attempts
		sums[i].Delivered += x.Delivered
		sums[i].Failed += x.Failed
		sums[i].GivenUp += x.GivenUp
		sums[i].QueueLag = max(sums[i].QueueLag, x.QueueLag)
	}
	attempts, ratio, given := make([]float64, len(sums)), make([]float64, len(sums)), make([]float64, len(sums))
	lag := make([]float64, len(sums))
	labels, lagLabels := make([]string, len(sums)), make([]string, len(sums))
	for i, s := range sums {
		at := first.Add(time.Duration(i) * bucket).Format("15:04")
		attempts[i], given[i] = float64(s.Attempts), float64(s.GivenUp)
		lag[i] = s.QueueLag.Seconds()
		lagLabels[i] = fmt.Sprintf("%s: the oldest due event had waited %s", at, human(s.QueueLag))
		if done := s.Delivered + s.Failed + s.GivenUp; done > 0 {
			ratio[i] = float64(s.Delivered) / float64(done)
		}
		labels[i] = fmt.Sprintf("%s: %d attempts, %d delivered, %d failed, %d given up", at, s.Attempts, s.Delivered, s.Failed, s.GivenUp)
		d.TotalAttempts += s.Attempts
		d.TotalDelivered += s.Delivered
		d.TotalFails += s.Failed
		d.TotalGiven += s.GivenUp
	}
	d.Attempts = drawSeries(attempts, maxOf(attempts), labels, fmt.Sprint(maxOf(attempts)))
	d.Ratio = drawSeries(ratio, 1, labels, "100%")
	d.GivenUp = drawSeries(given, maxOf(given), labels, fmt.Sprint(maxOf(given)))
	if rq.sess.User.Role == webhook.RoleAdmin && rq.tenant == 0 && h.deps.Queue != nil {
		d.Admin = true
		q, err := h.deps.Queue(r.Context(), countLimit)
		if err != nil {
			return err
		}
		d.Due, d.Scheduled, d.Leased = atLeast(q.Due), atLeast(q.Scheduled), atLeast(q.Leased)
		if !q.OldestDue.IsZero() {
			d.Lag = human(q.OldestDueAge)
		}
		top := maxOf(lag)
		d.QueueLag = drawSeries(lag, top, lagLabels, human(time.Duration(top*float64(time.Second))))
	}
	h.render(w, r, rq, http.StatusOK, "overview", "Overview", d)
	return nil
}

// atLeast writes a count read up to countLimit.
func atLeast(n int64) string {
	if n >= countLimit {
		return fmt.Sprintf("%d+", n)
	}
	return fmt.Sprint(n)
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
