package store

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// TestMarkUnavailable: the database's connection failures become
// webhook.ErrUnavailable with their text and chain kept; anything else is
// left as it is.
func TestMarkUnavailable(t *testing.T) {
	for _, cause := range []error{sql.ErrConnDone, sqldriver.ErrBadConn, context.DeadlineExceeded,
		&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}} {
		err := fmt.Errorf("list webhooks: %w", cause)
		marked := err
		markUnavailable(&marked)
		if !errors.Is(marked, webhook.ErrUnavailable) || !errors.Is(marked, cause) || marked.Error() != err.Error() {
			t.Errorf("%v: marked %v (unavailable %t)", cause, marked, errors.Is(marked, webhook.ErrUnavailable))
		}
	}
	for _, err := range []error{nil, errors.New("syntax error"), webhook.ErrNotFound, sql.ErrNoRows,
		fmt.Errorf("%w: publish", webhook.ErrUnavailable)} {
		marked := err
		markUnavailable(&marked)
		if marked != err {
			t.Errorf("%v: marked %v", err, marked)
		}
	}
}
