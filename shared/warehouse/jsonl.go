package warehouse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"sync"

	"example.com/platform/shared/retry"
)

// JSONLRecord is one line of a JSONL sink's file.
type JSONLRecord struct {
	Table    string         `json:"table"`
	InsertID string         `json:"insert_id,omitempty"`
	Row      map[string]any `json:"row"`
}

// JSONL is a Sink that appends rows as JSON lines ({"table", "insert_id",
// "row"}) to a local file: the local stack's warehouse when no BigQuery
// emulator runs. It validates rows against the table schemas like
// BigQuery and deduplicates by insert id across restarts (the ids already
// in the file are loaded on open). One Insert is one write of whole lines.
// It is safe for concurrent use within one process; two processes must not
// share a file.
type JSONL struct {
	tables map[string]Schema
	path   string

	mu   sync.Mutex
	f    *os.File
	seen map[string]map[string]bool
}

// NewJSONL opens (creating it if needed) the file at path for appending.
func NewJSONL(path string, tables map[string]Schema) (*JSONL, error) {
	recs, err := ReadJSONL(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	seen := map[string]map[string]bool{}
	for _, r := range recs {
		if seen[r.Table] == nil {
			seen[r.Table] = map[string]bool{}
		}
		if r.InsertID != "" {
			seen[r.Table][r.InsertID] = true
		}
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("warehouse: open %s: %w", path, err)
	}
	return &JSONL{tables: maps.Clone(tables), path: path, f: f, seen: seen}, nil
}

// Path returns the file's path.
func (j *JSONL) Path() string { return j.path }

// Insert implements Sink. A failed write is transient.
func (j *JSONL) Insert(ctx context.Context, table string, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	st, err := prepare(ctx, j.tables, table, rows)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.seen[table] == nil {
		j.seen[table] = map[string]bool{}
	}
	// The ids of this insert count as seen only once written, so they are
	// collected apart and merged after the write: the cost is O(rows
	// inserted), not O(rows ever written).
	seen := j.seen[table]
	added := map[string]bool{}
	kept := st[:0:0]
	for _, r := range st {
		if r.InsertID != "" {
			if seen[r.InsertID] || added[r.InsertID] {
				continue
			}
			added[r.InsertID] = true
		}
		kept = append(kept, r)
	}
	st = kept
	var buf bytes.Buffer
	for _, r := range st {
		b, err := json.Marshal(JSONLRecord{Table: table, InsertID: r.InsertID, Row: r.Values})
		if err != nil {
			return retry.Permanent(fmt.Errorf("warehouse: encode row for %s: %w", table, err))
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if buf.Len() == 0 {
		return nil
	}
	if _, err := j.f.Write(buf.Bytes()); err != nil {
		return retry.Transient(fmt.Errorf("warehouse: append to %s: %w", j.path, err))
	}
	for id := range added {
		seen[id] = true
	}
	return nil
}

// Rows returns the rows of table in the file, in order.
func (j *JSONL) Rows(table string) ([]Stored, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	recs, err := ReadJSONL(j.path)
	if err != nil {
		return nil, err
	}
	var out []Stored
	for _, r := range recs {
		if r.Table == table {
			out = append(out, Stored{InsertID: r.InsertID, Values: r.Row})
		}
	}
	return out, nil
}

// Close closes the file.
func (j *JSONL) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}

// ReadJSONL reads every record of a JSONL sink's file. Numbers are kept
// exact (json.Number).
func ReadJSONL(path string) ([]JSONLRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("warehouse: read %s: %w", path, err)
	}
	defer f.Close()
	var out []JSONLRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 32<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var r JSONLRecord
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("warehouse: %s line %d: %w", path, n, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("warehouse: read %s: %w", path, err)
	}
	return out, nil
}
