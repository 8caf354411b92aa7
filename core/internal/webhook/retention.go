package webhook

import "time"

// PurgeRequest selects one batch of delivered events to delete for
// retention. Pending and given-up events are never selected: a given-up
// event can still be redelivered.
type PurgeRequest struct {
	// Before is the cutoff: events created and last changed before it.
	Before time.Time
	// From resumes a run where the previous batch stopped: only events
	// created at or after it. Zero starts from the oldest.
	From time.Time
	// Limit bounds the batch. Defaults to 1000.
	Limit int
}

// Purged counts what a purge deleted or, for a dry run, would delete.
type Purged struct {
	Events, Attempts, Messages int64
	// Next is the From of the following batch; zero when nothing is left.
	Next time.Time
}

// Add returns the sum of p and o, with o's Next.
func (p Purged) Add(o Purged) Purged {
	return Purged{Events: p.Events + o.Events, Attempts: p.Attempts + o.Attempts, Messages: p.Messages + o.Messages, Next: o.Next}
}
