// Package warehousetest is the conformance suite every warehouse.Sink must
// pass. Run it from each implementation's tests:
//
//	warehousetest.Run(t, func(t testing.TB, tables map[string]warehouse.Schema) warehousetest.Target {
//		m := warehouse.NewMemory(tables)
//		return warehousetest.Target{Sink: m, Rows: func(_ testing.TB, table string) []warehouse.Stored { return m.Rows(table) }}
//	})
package warehousetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"example.com/platform/shared/retry"
	"example.com/platform/shared/warehouse"
)

// Target is one sink under test.
type Target struct {
	Sink warehouse.Sink
	// Rows returns what table holds, in any order, with values in any form
	// warehouse.Schema.Normalize accepts.
	Rows func(tb testing.TB, table string) []warehouse.Stored
	// NoDedup says the backend does not promise insertId deduplication
	// (an emulator); the duplicate case then only checks the rows exist.
	NoDedup bool
}

// NewTarget returns a fresh, empty sink holding tables.
type NewTarget func(tb testing.TB, tables map[string]warehouse.Schema) Target

// Tables used by the suite.
const (
	TableEvents = "suite_events"
	TableOther  = "suite_other"
)

// EventsSchema is the suite's main table: one column of each type the
// repository's tables use.
var EventsSchema = warehouse.MustParseSchema([]byte(`[
  {"name": "id", "type": "STRING", "mode": "REQUIRED"},
  {"name": "at", "type": "TIMESTAMP", "mode": "REQUIRED"},
  {"name": "n", "type": "INTEGER", "mode": "NULLABLE"},
  {"name": "doc", "type": "JSON", "mode": "NULLABLE"},
  {"name": "note", "type": "STRING", "mode": "NULLABLE"},
  {"name": "ok", "type": "BOOLEAN", "mode": "NULLABLE"}
]`))

// OtherSchema is a second table, to check tables are kept apart.
var OtherSchema = warehouse.MustParseSchema([]byte(`[{"name": "id", "type": "STRING", "mode": "REQUIRED"}]`))

// Tables are the tables every Target must hold.
func Tables() map[string]warehouse.Schema {
	return map[string]warehouse.Schema{TableEvents: EventsSchema, TableOther: OtherSchema}
}

var t0 = time.Date(2026, 5, 1, 12, 30, 45, 123456789, time.UTC)

func row(id string, n int) warehouse.Row {
	return warehouse.Row{InsertID: id, Values: map[string]any{
		"id": id, "at": t0.Add(time.Duration(n) * time.Second), "n": n,
		"doc": json.RawMessage(fmt.Sprintf(`{"b": [1, 2], "a": %q}`, id)), "note": nil, "ok": n%2 == 0,
	}}
}

// Run runs the suite against the sinks newTarget returns (one per
// subtest).
func Run(t *testing.T, newTarget NewTarget) {
	ctx := context.Background()

	t.Run("InsertedRowsReadBackAsSent", func(t *testing.T) {
		tg := newTarget(t, Tables())
		rows := []warehouse.Row{row("a", 1), row("b", 2), {InsertID: "c", Values: map[string]any{"id": "c", "at": t0}}}
		if err := tg.Sink.Insert(ctx, TableEvents, rows); err != nil {
			t.Fatalf("Insert: %v", err)
		}
		got := normalized(t, tg, TableEvents)
		want := map[string]map[string]any{
			"a": {"id": "a", "at": t0.Add(time.Second).Truncate(time.Microsecond), "n": int64(1), "doc": `{"a":"a","b":[1,2]}`, "ok": false},
			"b": {"id": "b", "at": t0.Add(2 * time.Second).Truncate(time.Microsecond), "n": int64(2), "doc": `{"a":"b","b":[1,2]}`, "ok": true},
			"c": {"id": "c", "at": t0.Truncate(time.Microsecond)},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("rows read back:\n got %v\nwant %v", got, want)
		}
		if other := tg.Rows(t, TableOther); len(other) != 0 {
			t.Fatalf("rows leaked into %s: %v", TableOther, other)
		}
	})

	t.Run("EmptyInsertIsANoOp", func(t *testing.T) {
		tg := newTarget(t, Tables())
		if err := tg.Sink.Insert(ctx, TableEvents, nil); err != nil {
			t.Fatalf("Insert(nil): %v", err)
		}
		if err := tg.Sink.Insert(ctx, "no_such_table", []warehouse.Row{}); err != nil {
			t.Fatalf("Insert of no rows into an unknown table: %v (want a no-op)", err)
		}
		if got := tg.Rows(t, TableEvents); len(got) != 0 {
			t.Fatalf("rows: %v", got)
		}
	})

	t.Run("DuplicateInsertIDIsWrittenOnce", func(t *testing.T) {
		tg := newTarget(t, Tables())
		if err := tg.Sink.Insert(ctx, TableEvents, []warehouse.Row{row("dup", 1)}); err != nil {
			t.Fatal(err)
		}
		// A retried insert: the same row again, with a new one.
		if err := tg.Sink.Insert(ctx, TableEvents, []warehouse.Row{row("dup", 1), row("new", 2)}); err != nil {
			t.Fatal(err)
		}
		got := tg.Rows(t, TableEvents)
		ids := idsOf(got)
		if tg.NoDedup {
			if !contains(ids, "dup") || !contains(ids, "new") {
				t.Fatalf("rows %v, want dup and new", ids)
			}
			return
		}
		if !reflect.DeepEqual(ids, []string{"dup", "new"}) {
			t.Fatalf("rows %v, want [dup new]: insertId must deduplicate", ids)
		}
	})

	t.Run("InvalidRowRejectsTheWholeInsert", func(t *testing.T) {
		tg := newTarget(t, Tables())
		missing := warehouse.Row{InsertID: "missing", Values: map[string]any{"at": t0}}
		wrongType := warehouse.Row{InsertID: "wrong", Values: map[string]any{"id": "wrong", "at": t0, "n": "twelve"}}
		unknown := warehouse.Row{InsertID: "unknown", Values: map[string]any{"id": "unknown", "at": t0, "colour": "red"}}
		badJSON := warehouse.Row{InsertID: "badjson", Values: map[string]any{"id": "badjson", "at": t0, "doc": json.RawMessage(`{"unterminated`)}}
		err := tg.Sink.Insert(ctx, TableEvents, []warehouse.Row{row("good", 1), missing, wrongType, unknown, badJSON})
		if !retry.IsPermanent(err) {
			t.Fatalf("err %v: want permanent", err)
		}
		var ie *warehouse.InsertError
		if !errors.As(err, &ie) {
			t.Fatalf("err %T %v: want *warehouse.InsertError", err, err)
		}
		byIndex := map[int]warehouse.RowError{}
		for _, r := range ie.Rows {
			byIndex[r.Index] = r
		}
		if byIndex[0].Reason != warehouse.ReasonStopped {
			t.Errorf("valid row 0: %+v, want reason stopped", byIndex[0])
		}
		for i, loc := range map[int]string{1: "id", 2: "n", 3: "colour", 4: "doc"} {
			if r := byIndex[i]; r.Reason != warehouse.ReasonInvalid || r.Location != loc {
				t.Errorf("row %d: %+v, want reason invalid at %s", i, r, loc)
			}
		}
		if len(ie.Invalid()) != 4 {
			t.Errorf("Invalid(): %+v", ie.Invalid())
		}
		if got := tg.Rows(t, TableEvents); len(got) != 0 {
			t.Fatalf("rows written by a rejected insert: %v", idsOf(got))
		}
	})

	t.Run("UnknownTableIsPermanent", func(t *testing.T) {
		tg := newTarget(t, Tables())
		err := tg.Sink.Insert(ctx, "no_such_table", []warehouse.Row{row("x", 1)})
		if !retry.IsPermanent(err) || !errors.Is(err, warehouse.ErrTableNotFound) {
			t.Fatalf("err %v: want permanent ErrTableNotFound", err)
		}
	})

	t.Run("UnsupportedValueIsPermanent", func(t *testing.T) {
		tg := newTarget(t, Tables())
		err := tg.Sink.Insert(ctx, TableEvents, []warehouse.Row{{InsertID: "s", Values: map[string]any{"id": struct{}{}, "at": t0}}})
		if !retry.IsPermanent(err) {
			t.Fatalf("err %v: want permanent", err)
		}
		if got := tg.Rows(t, TableEvents); len(got) != 0 {
			t.Fatalf("rows: %v", got)
		}
	})

	t.Run("CanceledContextIsTransient", func(t *testing.T) {
		tg := newTarget(t, Tables())
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := tg.Sink.Insert(cctx, TableEvents, []warehouse.Row{row("late", 1)})
		if err == nil || retry.IsPermanent(err) {
			t.Fatalf("err %v: want a transient error", err)
		}
		if got := tg.Rows(t, TableEvents); len(got) != 0 {
			t.Fatalf("rows written with a canceled context: %v", idsOf(got))
		}
	})

	t.Run("ConcurrentInserts", func(t *testing.T) {
		tg := newTarget(t, Tables())
		const workers, each = 8, 5
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					id := fmt.Sprintf("w%d-%d", w, i)
					errs <- tg.Sink.Insert(ctx, TableEvents, []warehouse.Row{row(id, i)})
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := tg.Rows(t, TableEvents); len(got) != workers*each {
			t.Fatalf("%d rows, want %d", len(got), workers*each)
		}
	})
}

func normalized(tb testing.TB, tg Target, table string) map[string]map[string]any {
	tb.Helper()
	schema := Tables()[table]
	out := map[string]map[string]any{}
	for _, r := range tg.Rows(tb, table) {
		n := schema.Normalize(r.Values)
		id, _ := n["id"].(string)
		if _, dup := out[id]; dup {
			tb.Fatalf("row %s read back twice", id)
		}
		out[id] = n
	}
	return out
}

func idsOf(rows []warehouse.Stored) []string {
	var ids []string
	for _, r := range rows {
		id, _ := r.Values["id"].(string)
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
