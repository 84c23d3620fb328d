package warehouse_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"example.com/platform/shared/warehouse"
)

// BenchmarkJSONLInsert measures one Insert of one new row into a JSONL sink
// whose file already holds `written` rows of the same table. The cost per
// insert must not grow with written (it did when every insert cloned the
// table's set of seen insert ids).
func BenchmarkJSONLInsert(b *testing.B) {
	tables := map[string]warehouse.Schema{"events": {{Name: "id", Type: "STRING", Mode: "REQUIRED"}}}
	for _, written := range []int{0, 10_000, 100_000} {
		b.Run(fmt.Sprintf("written=%d", written), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "rows.jsonl")
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			w := bufio.NewWriter(f)
			enc := json.NewEncoder(w)
			for i := range written {
				id := fmt.Sprintf("old-%d", i)
				if err := enc.Encode(warehouse.JSONLRecord{Table: "events", InsertID: id, Row: map[string]any{"id": id}}); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
			f.Close()
			j, err := warehouse.NewJSONL(path, tables)
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("new-%d", i)
				if err := j.Insert(ctx, "events", []warehouse.Row{{InsertID: id, Values: map[string]any{"id": id}}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
