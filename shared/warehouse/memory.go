package warehouse

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"example.com/platform/shared/retry"
)

// Stored is a row as a sink keeps it: its insert id and its values in
// insertAll JSON form (as DecodeJSONRow returns them).
type Stored struct {
	InsertID string         `json:"insert_id,omitempty"`
	Values   map[string]any `json:"row"`
}

// prepare validates an insert the way BigQuery does and returns the rows
// in stored form. Errors are classified.
func prepare(ctx context.Context, tables map[string]Schema, table string, rows []Row) ([]Stored, error) {
	if err := ctx.Err(); err != nil {
		return nil, retry.Transient(fmt.Errorf("warehouse: insert into %s: %w", table, err))
	}
	schema, ok := tables[table]
	if !ok {
		return nil, tableNotFound(table)
	}
	out := make([]Stored, len(rows))
	errs := make([]*FieldError, len(rows))
	for i, r := range rows {
		w, err := wireRow(r.Values)
		if err != nil {
			return nil, retry.Permanent(fmt.Errorf("warehouse: insert into %s: row %d: %w", table, i, err))
		}
		out[i] = Stored{InsertID: r.InsertID, Values: w}
		errs[i] = schema.Validate(w)
	}
	if err := rejectRows(table, rows, errs); err != nil {
		return nil, err
	}
	return out, nil
}

// dedup drops rows whose insert id was seen (in seen or earlier in rows)
// and records the new ids in seen.
func dedup(seen map[string]bool, rows []Stored) []Stored {
	var out []Stored
	for _, r := range rows {
		if r.InsertID != "" {
			if seen[r.InsertID] {
				continue
			}
			seen[r.InsertID] = true
		}
		out = append(out, r)
	}
	return out
}

// Memory is an in-memory Sink for tests. It validates rows against the
// table schemas like BigQuery (all or nothing) and deduplicates by insert
// id for its whole life (BigQuery does so for about a minute). It is safe
// for concurrent use.
type Memory struct {
	// Fail, when set, is called before each insert; a non-nil error is
	// returned instead of inserting (fault injection).
	Fail func(table string, rows []Row) error

	tables map[string]Schema
	mu     sync.Mutex
	rows   map[string][]Stored
	seen   map[string]map[string]bool
}

// NewMemory returns a Memory sink holding tables.
func NewMemory(tables map[string]Schema) *Memory {
	return &Memory{tables: maps.Clone(tables), rows: map[string][]Stored{}, seen: map[string]map[string]bool{}}
}

// Insert implements Sink.
func (m *Memory) Insert(ctx context.Context, table string, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	if m.Fail != nil {
		if err := m.Fail(table, rows); err != nil {
			return err
		}
	}
	st, err := prepare(ctx, m.tables, table, rows)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[table] == nil {
		m.seen[table] = map[string]bool{}
	}
	m.rows[table] = append(m.rows[table], dedup(m.seen[table], st)...)
	return nil
}

// Rows returns a copy of the rows of table, in insertion order.
func (m *Memory) Rows(table string) []Stored {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Stored(nil), m.rows[table]...)
}
