package store

import "testing"

// TestStatementJournalConfigured: SQLite took the statement journal's
// in-memory size (it must be set before any database is opened).
func TestStatementJournalConfigured(t *testing.T) {
	if errStmtJournal != nil {
		t.Fatal(errStmtJournal)
	}
}
