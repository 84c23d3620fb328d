package dlq

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	dlarchive "example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/warehouse"
)

// JSONL reads the archive from a JSON-lines file, as the local stack's
// dead-letter function writes it through warehouse.JSONL: one record per
// line, {"table": "dead_letters", "insert_id": ..., "row": {columns}}
// (records of other tables, when the file is shared, are skipped). A line
// that is a bare row object (the dead_letters columns at the top level) is
// read too. Blank lines are skipped, and so is a last line without its
// newline that does not parse (a record being appended while we read). Any
// other line that does not decode is an error naming the file and line.
// It is safe for concurrent use; every call reads the file again.
type JSONL struct {
	// Path is the file.
	Path string
	// Table is the table whose records are read; default DefaultTable.
	Table string
}

// String implements Archive.
func (j *JSONL) String() string { return "jsonl:" + j.Path }

// List implements Archive.
func (j *JSONL) List(ctx context.Context, f Filter) ([]Entry, error) {
	var out []Entry
	err := j.scan(ctx, func(e Entry) bool {
		if f.Match(e) {
			out = append(out, e)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return sortDedupLimit(out, f.Limit), nil
}

// Get implements Archive: the first received copy of message id.
func (j *JSONL) Get(ctx context.Context, id string) (Entry, error) {
	var found []Entry
	err := j.scan(ctx, func(e Entry) bool {
		if e.MessageID == id {
			found = append(found, e)
		}
		return true
	})
	if err != nil {
		return Entry{}, err
	}
	if len(found) == 0 {
		return Entry{}, fmt.Errorf("%w: %s in %s", ErrNotFound, id, j)
	}
	return sortDedupLimit(found, 1)[0], nil
}

func (j *JSONL) scan(ctx context.Context, fn func(Entry) bool) error {
	f, err := os.Open(j.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("archive %s: file does not exist (wrong path, or nothing archived yet): %w", j, err)
	}
	if err != nil {
		return fmt.Errorf("archive %s: %w", j, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for line := 1; ; line++ {
		if line%1000 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("archive %s: %w", j, err)
			}
		}
		b, rerr := r.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("archive %s: read line %d: %w", j, line, rerr)
		}
		complete := rerr == nil
		if b = bytes.TrimSpace(b); len(b) > 0 {
			e, ok, err := j.decodeLine(b)
			switch {
			case err != nil && !complete:
				// A partial last line: a writer is appending it.
			case err != nil:
				return fmt.Errorf("archive %s: line %d: %w", j, line, err)
			case ok && !fn(e):
				return nil
			}
		}
		if !complete {
			return nil
		}
	}
}

// decodeLine decodes one line; ok is false for a record of another table.
func (j *JSONL) decodeLine(b []byte) (e Entry, ok bool, err error) {
	row, err := warehouse.DecodeJSONRow(b)
	if err != nil {
		return Entry{}, false, fmt.Errorf("not a JSON object: %w", err)
	}
	if inner, isRecord := row["row"].(map[string]any); isRecord {
		table, _ := row["table"].(string)
		want := j.Table
		if want == "" {
			want = DefaultTable
		}
		if table != want {
			return Entry{}, false, nil
		}
		row = inner
	}
	e, err = dlarchive.DecodeRow(row)
	return e, err == nil, err
}
