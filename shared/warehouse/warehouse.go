// Package warehouse is the analytics sink port: append rows to a table of
// the analytics dataset (BigQuery in production), with a best-effort
// deduplication id per row.
//
// # Implementations
//
//	BigQuery  the real cloud.google.com/go/bigquery client, streaming
//	          inserts (tabledata.insertAll) with insertId = Row.InsertID
//	JSONL     appends rows as JSON lines to a local file (local stack
//	          without an emulator)
//	Memory    keeps rows in memory (tests)
//
// One conformance suite (package warehousetest) runs against all three; the
// BigQuery client runs against package bqfake, an httptest server speaking
// the insertAll REST contract, and against a BigQuery emulator when
// BIGQUERY_EMULATOR_HOST is set.
//
// # Values
//
// Row.Values maps column names to Go values, converted to the insertAll JSON
// form (see Encode) by every implementation the same way:
//
//	string, bool, int, int32, int64, float64   as they are
//	time.Time                                  TIMESTAMP text, UTC, microseconds
//	json.RawMessage                            JSON column: its text, as a string
//	[]byte                                     BYTES column: base64 text
//	nil                                        NULL
//
// # Errors
//
// Insert returns nil when every row was accepted. Errors are classified for
// package retry:
//
//   - rows BigQuery rejected (insertErrors in the response: a missing
//     required column, a value of the wrong type, an unknown column) are
//     permanent, as an *InsertError listing each row: the same rows fail
//     the same way on every attempt, so the caller dead-letters them. As
//     in BigQuery with skipInvalidRows=false, one invalid row rejects the
//     whole request: valid rows of it are listed with reason "stopped" and
//     nothing is written;
//   - HTTP 5xx, 429 and 403 with reason quotaExceeded or rateLimitExceeded,
//     timeouts and network errors are transient;
//   - any other 4xx (table not found, access denied, bad request) and a
//     value that cannot be encoded are permanent.
//
// Deduplication by InsertID is best effort (BigQuery keeps ids for about a
// minute): consumers that need exactly-once counts deduplicate on the
// event id downstream.
package warehouse

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"example.com/platform/shared/retry"
)

// Row is one row to insert.
type Row struct {
	// InsertID is BigQuery's best-effort deduplication id (insertId): a
	// retried insert with the same id within about a minute is written
	// once. Use the event id.
	InsertID string
	// Values maps column names to values (see the package documentation
	// for the Go types accepted).
	Values map[string]any
}

// Sink appends rows to tables. Implementations are safe for concurrent use.
type Sink interface {
	// Insert appends rows to table, all or none. Errors are classified
	// (retry.IsPermanent): see the package documentation.
	Insert(ctx context.Context, table string, rows []Row) error
}

// Per-row error reasons, as BigQuery reports them.
const (
	// ReasonInvalid marks a row that does not match the table schema.
	ReasonInvalid = "invalid"
	// ReasonStopped marks a valid row that was not written because
	// another row of the same request was invalid.
	ReasonStopped = "stopped"
)

// RowError is BigQuery's verdict on one row of a rejected insert.
type RowError struct {
	// Index is the row's position in the Insert call.
	Index    int
	InsertID string
	// Reason is ReasonInvalid or ReasonStopped (or another BigQuery reason).
	Reason   string
	Location string // the column at fault, when known
	Message  string
}

// InsertError reports rows the warehouse rejected. It is permanent.
type InsertError struct {
	Table string
	Rows  []RowError
}

// Error lists the invalid rows (stopped rows are only counted).
func (e *InsertError) Error() string {
	var parts []string
	stopped := 0
	for _, r := range e.Rows {
		if r.Reason == ReasonStopped {
			stopped++
			continue
		}
		loc := ""
		if r.Location != "" {
			loc = " " + r.Location
		}
		parts = append(parts, fmt.Sprintf("row %d (%s)%s: %s: %s", r.Index, r.InsertID, loc, r.Reason, r.Message))
	}
	msg := fmt.Sprintf("warehouse: %s rejected %d row(s): %s", e.Table, len(e.Rows)-stopped, strings.Join(parts, "; "))
	if stopped > 0 {
		msg += fmt.Sprintf(" (%d valid row(s) stopped)", stopped)
	}
	return msg
}

// Invalid returns the rows that were rejected for themselves (not stopped).
func (e *InsertError) Invalid() []RowError {
	var out []RowError
	for _, r := range e.Rows {
		if r.Reason != ReasonStopped {
			out = append(out, r)
		}
	}
	return out
}

// ErrTableNotFound is matched (errors.Is) by the error of an insert into a
// table the sink does not know. It is permanent.
var ErrTableNotFound = errors.New("warehouse: table not found")

func tableNotFound(table string) error {
	return retry.Permanent(fmt.Errorf("%w: %s", ErrTableNotFound, table))
}

// rejectRows builds the all-or-nothing InsertError of a request whose
// rows were validated one by one: bad rows keep their error, the others
// are "stopped". It returns nil when every row is valid.
func rejectRows(table string, rows []Row, errs []*FieldError) error {
	bad := false
	for _, e := range errs {
		if e != nil {
			bad = true
		}
	}
	if !bad {
		return nil
	}
	ie := &InsertError{Table: table}
	for i, e := range errs {
		re := RowError{Index: i, InsertID: rows[i].InsertID, Reason: ReasonStopped}
		if e != nil {
			re.Reason, re.Location, re.Message = ReasonInvalid, e.Location, e.Message
		}
		ie.Rows = append(ie.Rows, re)
	}
	return retry.Permanent(ie)
}
