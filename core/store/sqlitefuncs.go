package store

import (
	"database/sql/driver"
	"strings"

	"modernc.org/sqlite"
)

// lowerSQLite is the name of a lower() that folds all of Unicode on SQLite,
// whose own lower() folds ASCII only: the case-insensitive hook filters must
// match the way PostgreSQL's lower() does.
const lowerSQLite = "whisperer_lower"

func init() {
	sqlite.MustRegisterDeterministicScalarFunction(lowerSQLite, 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return strings.ToLower(v), nil
		case []byte:
			return strings.ToLower(string(v)), nil
		default:
			return v, nil // NULL and numbers have no case
		}
	})
}

// lower is the dialect's Unicode-aware lower() function.
func (s *Store) lower() string {
	if s.dialect == SQLite {
		return lowerSQLite
	}
	return "lower"
}
