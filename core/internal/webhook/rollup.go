package webhook

import "time"

// Rollup is one minute of delivery results, summed: what the console's
// overview charts read instead of scanning events.
type Rollup struct {
	Minute time.Time
	// Attempts counts the requests sent; Delivered, Failed (an attempt
	// failed, a retry is pending) and GivenUp the states results left
	// their events in.
	Attempts, Delivered, Failed, GivenUp int64
	// QueueLag is the longest the oldest due event had waited when a node
	// sampled the queue in this minute (once a minute; the largest of
	// every node's sample). Only an admin's rollups (Scope.All) have it.
	QueueLag time.Duration
}

// HookSuccess is a hook's requests over a recent window (the hook_rollups
// hours): how many were sent and how many delivered.
type HookSuccess struct {
	Attempts, Delivered int64
}
