package store

import (
	"errors"
	"fmt"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// stmtJournalSpill is how many bytes of a statement journal SQLite keeps
// in memory before it moves the journal to a temporary file.
//
// A statement inside a transaction journals the original content of each
// page it changes, so that it alone can be undone. SQLite's 64 KiB is 16
// pages; a publish's INSERT of one event writes a leaf page of each of
// webhook_events' ten b-trees, and more when a page splits (more often
// with a big table), so publishes spilled: a temporary file opened, every
// page written to it in two write calls (its number, its content). The
// journal only undoes a statement inside its transaction — the WAL is
// what makes a commit durable — so keeping it in memory changes nothing
// of durability. Memory stays bounded: this much per open statement
// journal (the server has one SQLite connection), beyond which a journal
// spills as before.
const stmtJournalSpill = 256 << 10

// errStmtJournal is why SQLite did not take stmtJournalSpill (nil: it
// did). It can only be configured before SQLite's first open in the
// process.
var errStmtJournal = configureStmtJournal()

func configureStmtJournal() error {
	tls := libc.NewTLS()
	defer tls.Close()
	va := libc.Xmalloc(tls, 8)
	if va == 0 {
		return errors.New("sqlite: out of memory")
	}
	defer libc.Xfree(tls, va)
	if rc := sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_STMTJRNL_SPILL, libc.VaList(va, int32(stmtJournalSpill))); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL) returned %d", rc)
	}
	return nil
}
