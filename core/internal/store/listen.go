package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// listen keeps a PostgreSQL LISTEN on channel until ctx ends, on its own
// connection. onListen runs each time the LISTEN is in place (to catch up
// on what was missed meanwhile), onNotify on each notification (with its
// payload), onDown (when not nil) whenever a connection ends. A lost
// connection is reported to onErr (when not nil) and tried again after a
// backoff of 100 ms doubling to 5 s, back to 100 ms once a connection got
// as far as listening.
func (s *Store) listen(ctx context.Context, channel string, onListen func(), onNotify func(payload string), onDown func(), onErr func(error)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		listened, err := s.listenOnce(ctx, channel, onListen, onNotify)
		if onDown != nil {
			onDown()
		}
		if ctx.Err() != nil {
			return
		}
		if listened {
			backoff = 100 * time.Millisecond
		}
		if onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenOnce listens on one connection until it fails; it reports whether
// it got as far as listening, and why it stopped.
func (s *Store) listenOnce(ctx context.Context, channel string, onListen func(), onNotify func(payload string)) (bool, error) {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return false, err
	}
	onListen()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		onNotify(n.Payload)
	}
}
