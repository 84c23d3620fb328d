package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"example.com/platform/shared/retry"
	"example.com/platform/shared/warehouse"
	"example.com/platform/shared/warehouse/bqfake"
	"example.com/platform/shared/warehouse/warehousetest"
)

func TestMemoryConformance(t *testing.T) {
	warehousetest.Run(t, func(tb testing.TB, tables map[string]warehouse.Schema) warehousetest.Target {
		m := warehouse.NewMemory(tables)
		return warehousetest.Target{Sink: m, Rows: func(_ testing.TB, table string) []warehouse.Stored { return m.Rows(table) }}
	})
}

func TestJSONLConformance(t *testing.T) {
	warehousetest.Run(t, func(tb testing.TB, tables map[string]warehouse.Schema) warehousetest.Target {
		j, err := warehouse.NewJSONL(filepath.Join(tb.TempDir(), "rows.jsonl"), tables)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { j.Close() })
		return warehousetest.Target{Sink: j, Rows: func(tb testing.TB, table string) []warehouse.Stored {
			rows, err := j.Rows(table)
			if err != nil {
				tb.Fatal(err)
			}
			return rows
		}}
	})
}

// newFakeBigQuery returns the real client sink connected to a bqfake
// server.
func newFakeBigQuery(tb testing.TB, tables map[string]warehouse.Schema, timeout time.Duration) (*warehouse.BigQuery, *bqfake.Server) {
	tb.Helper()
	srv := bqfake.New(tb, "proj", "analytics", tables)
	bq, err := warehouse.NewBigQuery(context.Background(), warehouse.BigQueryConfig{
		Project: "proj", Dataset: "analytics", InsertTimeout: timeout, Options: srv.ClientOptions(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { bq.Close() })
	return bq, srv
}

func TestBigQueryConformanceAgainstFakeServer(t *testing.T) {
	t.Setenv(warehouse.EnvEmulatorHost, "") // the fake, not an emulator
	warehousetest.Run(t, func(tb testing.TB, tables map[string]warehouse.Schema) warehousetest.Target {
		bq, srv := newFakeBigQuery(tb, tables, 5*time.Second)
		return warehousetest.Target{Sink: bq, Rows: func(_ testing.TB, table string) []warehouse.Stored { return srv.Rows(table) }}
	})
}

var datasetSeq atomic.Int64

func TestBigQueryConformanceAgainstEmulator(t *testing.T) {
	host := os.Getenv(warehouse.EnvEmulatorHost)
	if host == "" {
		t.Skip("BIGQUERY_EMULATOR_HOST is not set: start a BigQuery emulator (for example goccy/bigquery-emulator --project=test) " +
			"and run with BIGQUERY_EMULATOR_HOST=localhost:9050 (and BIGQUERY_EMULATOR_PROJECT if its project is not \"test\")")
	}
	project := os.Getenv("BIGQUERY_EMULATOR_PROJECT")
	if project == "" {
		project = "test"
	}
	warehousetest.Run(t, func(tb testing.TB, tables map[string]warehouse.Schema) warehousetest.Target {
		ctx := context.Background()
		dataset := fmt.Sprintf("suite_%d_%d", time.Now().UnixNano(), datasetSeq.Add(1))
		bq, err := warehouse.NewBigQuery(ctx, warehouse.BigQueryConfig{Project: project, Dataset: dataset})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			_ = bq.Client().Dataset(dataset).DeleteWithContents(context.Background())
			bq.Close()
		})
		for name, schema := range tables {
			if err := bq.CreateTable(ctx, name, schema); err != nil {
				tb.Fatal(err)
			}
		}
		return warehousetest.Target{Sink: bq, NoDedup: true, Rows: func(tb testing.TB, table string) []warehouse.Stored {
			return readTable(tb, bq.Client(), dataset, table, tables[table])
		}}
	})
}

func readTable(tb testing.TB, c *bigquery.Client, dataset, table string, schema warehouse.Schema) []warehouse.Stored {
	tb.Helper()
	it := c.Dataset(dataset).Table(table).Read(context.Background())
	var out []warehouse.Stored
	for {
		var vals []bigquery.Value
		err := it.Next(&vals)
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			tb.Fatalf("read %s: %v", table, err)
		}
		m := map[string]any{}
		for i, f := range it.Schema {
			if i < len(vals) && vals[i] != nil {
				m[f.Name] = vals[i]
			}
		}
		out = append(out, warehouse.Stored{Values: m})
	}
}

func TestBigQueryRequestShape(t *testing.T) {
	t.Setenv(warehouse.EnvEmulatorHost, "")
	bq, srv := newFakeBigQuery(t, warehousetest.Tables(), 5*time.Second)
	at := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)
	err := bq.Insert(context.Background(), warehousetest.TableEvents, []warehouse.Row{{
		InsertID: "event-1",
		Values:   map[string]any{"id": "event-1", "at": at, "n": 7, "doc": []byte(nil)},
	}})
	if err == nil || !retry.IsPermanent(err) {
		// []byte is BYTES (base64 text) and doc is JSON: the fake must
		// reject it as BigQuery would.
		t.Fatalf("BYTES value into a JSON column: err %v, want permanent", err)
	}
	if err := bq.Insert(context.Background(), warehousetest.TableEvents, []warehouse.Row{{
		InsertID: "event-1",
		Values:   map[string]any{"id": "event-1", "at": at, "n": 7},
	}}); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	last := reqs[len(reqs)-1]
	if last.SkipInvalidRows || last.IgnoreUnknownValues {
		t.Fatalf("request flags: %+v (want all-or-nothing, unknown values rejected)", last)
	}
	if len(last.Rows) != 1 || last.Rows[0].InsertID != "event-1" {
		t.Fatalf("rows: %+v (want insertId = Row.InsertID)", last.Rows)
	}
	if got := last.Rows[0].Values["at"]; got != "2026-01-02T03:04:05.678901Z" {
		t.Fatalf("timestamp sent as %v", got)
	}
}

func TestBigQueryErrorClasses(t *testing.T) {
	t.Setenv(warehouse.EnvEmulatorHost, "")
	for _, tc := range []struct {
		name      string
		fault     bqfake.Fault
		permanent bool
	}{
		{"503 backendError", bqfake.BackendError, false},
		{"500 internalError", bqfake.InternalError, false},
		{"403 quotaExceeded", bqfake.QuotaExceeded, false},
		{"403 rateLimitExceeded", bqfake.RateLimitExceeded, false},
		{"429", bqfake.TooManyRequests, false},
		{"403 accessDenied", bqfake.AccessDenied, true},
		{"400 invalid", bqfake.Fault{Status: 400, Reason: "invalid", Message: "bad request"}, true},
		{"404 notFound", bqfake.Fault{Status: 404, Reason: "notFound", Message: "Not found: Table"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A short timeout bounds the client library's own retries.
			bq, srv := newFakeBigQuery(t, warehousetest.Tables(), 300*time.Millisecond)
			srv.FailAll(tc.fault)
			err := bq.Insert(context.Background(), warehousetest.TableEvents, []warehouse.Row{{InsertID: "x", Values: map[string]any{"id": "x", "at": time.Now()}}})
			if err == nil {
				t.Fatal("no error")
			}
			if retry.IsPermanent(err) != tc.permanent {
				t.Fatalf("err %v: permanent=%v, want %v", err, retry.IsPermanent(err), tc.permanent)
			}
			if !strings.Contains(err.Error(), tc.fault.Reason) && !strings.Contains(err.Error(), fmt.Sprint(tc.fault.Status)) {
				t.Fatalf("err %v does not say what failed", err)
			}
			srv.Heal()
			if err := bq.Insert(context.Background(), warehousetest.TableEvents, []warehouse.Row{{InsertID: "x", Values: map[string]any{"id": "x", "at": time.Now()}}}); err != nil {
				t.Fatalf("after heal: %v", err)
			}
		})
	}
}

func TestBigQueryClientRetriesOneBackendError(t *testing.T) {
	t.Setenv(warehouse.EnvEmulatorHost, "")
	bq, srv := newFakeBigQuery(t, warehousetest.Tables(), 10*time.Second)
	srv.FailNext(bqfake.BackendError)
	if err := bq.Insert(context.Background(), warehousetest.TableEvents, []warehouse.Row{{InsertID: "r", Values: map[string]any{"id": "r", "at": time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Requests()); n != 2 {
		t.Fatalf("%d requests, want 2 (one failed, one retried by the client)", n)
	}
	if len(srv.Rows(warehousetest.TableEvents)) != 1 {
		t.Fatal("row not written")
	}
}

func TestBigQueryConfigValidate(t *testing.T) {
	err := warehouse.BigQueryConfig{}.Validate()
	if !errors.Is(err, warehouse.ErrNoProject) || !errors.Is(err, warehouse.ErrNoDataset) {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := warehouse.NewBigQuery(context.Background(), warehouse.BigQueryConfig{Project: "p"}); !errors.Is(err, warehouse.ErrNoDataset) {
		t.Fatalf("NewBigQuery: %v", err)
	}
}

func TestJSONLDeduplicatesAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rows.jsonl")
	tables := warehousetest.Tables()
	row := warehouse.Row{InsertID: "once", Values: map[string]any{"id": "once", "at": time.Now()}}
	j, err := warehouse.NewJSONL(path, tables)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Insert(context.Background(), warehousetest.TableEvents, []warehouse.Row{row}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j, err = warehouse.NewJSONL(path, tables)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Insert(context.Background(), warehousetest.TableEvents, []warehouse.Row{row}); err != nil {
		t.Fatal(err)
	}
	recs, err := warehouse.ReadJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Table != warehousetest.TableEvents || recs[0].InsertID != "once" {
		t.Fatalf("records: %+v", recs)
	}
}

func TestParseSchemaRejectsBadSchemas(t *testing.T) {
	for name, src := range map[string]string{
		"not json":     `{`,
		"empty":        `[]`,
		"no name":      `[{"type": "STRING"}]`,
		"unknown type": `[{"name": "a", "type": "TEXT"}]`,
		"unknown mode": `[{"name": "a", "type": "STRING", "mode": "OPTIONAL"}]`,
		"duplicate":    `[{"name": "a", "type": "STRING"}, {"name": "A", "type": "STRING"}]`,
		"unknown key":  `[{"name": "a", "type": "STRING", "nullable": true}]`,
		"empty record": `[{"name": "a", "type": "RECORD"}]`,
	} {
		if _, err := warehouse.ParseSchema([]byte(src)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestValidateAndNormalize(t *testing.T) {
	s := warehouse.MustParseSchema([]byte(`[
	  {"name": "ts", "type": "TIMESTAMP", "mode": "REQUIRED"},
	  {"name": "n", "type": "INTEGER"},
	  {"name": "tags", "type": "STRING", "mode": "REPEATED"},
	  {"name": "rec", "type": "RECORD", "fields": [{"name": "x", "type": "BOOLEAN", "mode": "REQUIRED"}]}
	]`))
	ok := []string{
		`{"ts": "2026-05-01T12:00:00Z"}`,
		`{"ts": "2026-05-01 12:00:00.123456"}`,
		`{"ts": 1777636800.5, "n": "42"}`,
		`{"ts": "2026-05-01T12:00:00Z", "tags": ["a", "b"], "rec": {"x": true}}`,
	}
	for _, src := range ok {
		row, err := warehouse.DecodeJSONRow([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if fe := s.Validate(row); fe != nil {
			t.Errorf("%s: %v", src, fe)
		}
	}
	bad := map[string]string{
		`{"ts": "yesterday"}`:                         "ts",
		`{"ts": "2026-05-01T12:00:00Z", "n": 1.5}`:    "n",
		`{"ts": "2026-05-01T12:00:00Z", "tags": "a"}`: "tags",
		`{"ts": "2026-05-01T12:00:00Z", "rec": {}}`:   "rec.x",
		`{"n": 1}`: "ts",
	}
	for src, loc := range bad {
		row, err := warehouse.DecodeJSONRow([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if fe := s.Validate(row); fe == nil || fe.Location != loc {
			t.Errorf("%s: %v, want an error at %s", src, fe, loc)
		}
	}
	row, _ := warehouse.DecodeJSONRow([]byte(`{"ts": 1777636800.5, "n": "42"}`))
	n := s.Normalize(row)
	if n["n"] != int64(42) || !n["ts"].(time.Time).Equal(time.Unix(1777636800, 500_000_000)) {
		t.Fatalf("Normalize: %v", n)
	}
}

func TestOpenSelectsTheSink(t *testing.T) {
	tables := warehousetest.Tables()
	if _, _, err := warehouse.Open(context.Background(), warehouse.OpenConfig{Kind: "bogus"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, _, err := warehouse.Open(context.Background(), warehouse.OpenConfig{Kind: warehouse.KindBigQuery}); !errors.Is(err, warehouse.ErrNoProject) {
		t.Fatalf("bigquery without a project: %v", err)
	}
	s, c, err := warehouse.Open(context.Background(), warehouse.OpenConfig{Kind: warehouse.KindMemory, Tables: tables})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := s.(*warehouse.Memory); !ok {
		t.Fatalf("sink %T", s)
	}
}
