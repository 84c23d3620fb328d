package dlq_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"example.com/platform/shared/deadletter"
	dlarchive "example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/warehouse"
	"example.com/platform/tools/ops/dlq"
	"example.com/platform/tools/ops/dlq/dlqtest"
)

func entries() []dlq.Entry {
	return []dlq.Entry{
		{
			MessageID: "m1", OriginalTopic: "order.created", Subscription: "payment--order.created",
			Attributes:  map[string]string{"ce-id": "e1", "ce-type": "com.example.orders.order.created.v1", "dlq-reason-class": "permanent", "dlq-reason": "decode order: bad"},
			Body:        []byte(`{"order_id":"o1"}`),
			ReasonClass: "permanent", ReasonMessage: "decode order: bad", DeliveryAttempts: 1,
			PublishTime: dlqtest.Time("2030-01-01T09:59:00Z"), DeadLetteredAt: dlqtest.Time("2030-01-01T10:00:00Z"),
		},
		{
			// Dead-lettered by Pub/Sub after its attempts: only the
			// subscription attribute, binary body.
			MessageID: "m2",
			Attributes: map[string]string{"ce-id": "e2", "ce-type": "com.example.payments.payment.processed.v1",
				deadletter.AttrPubSubSubscription: "projects/p/subscriptions/shipment--payment.processed", deadletter.AttrPubSubDeliveryCount: "5"},
			Body:           []byte{0xff, 0x00, 0x01},
			DeadLetteredAt: dlqtest.Time("2030-01-01T11:00:00Z"),
		},
		{
			MessageID: "m3", OriginalTopic: "projects/p/topics/order.created", Subscription: "projects/p/subscriptions/payment--order.created",
			Attributes:  map[string]string{"ce-id": "e3", "ce-type": "com.example.orders.order.created.v1"},
			Body:        []byte(`{}`),
			ReasonClass: "permanent", ReasonMessage: "decode order: bad",
			DeadLetteredAt: dlqtest.Time("2030-01-01T12:00:00Z"),
		},
	}
}

// The columns the reader expects are the ones the dead-letter function's
// schema declares.
func TestColumnsMatchSchemaFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "functions", "deadletter", "schema", "dead_letters.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := warehouse.ParseSchema(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Names(), dlarchive.Columns) {
		t.Fatalf("schema columns %v, reader columns %v", s.Names(), dlarchive.Columns)
	}
	fake := dlqtest.Schema()
	for i, f := range s {
		if g := fake[i]; g.Name != f.Name || g.Type != f.Type || g.Mode != f.Mode {
			t.Errorf("test schema column %+v, schema file %+v", g, f)
		}
	}
	// Every row the test helper writes validates against the schema.
	for _, e := range entries() {
		row, err := warehouse.DecodeJSONRow(mustJSON(t, dlqtest.Row(e)))
		if err != nil {
			t.Fatal(err)
		}
		if fe := s.Validate(row); fe != nil {
			t.Fatalf("row %s: %v", e.MessageID, fe)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func archives(t *testing.T) map[string]dlq.Archive {
	srv := dlqtest.NewBigQuery(t, entries()...)
	bq, err := dlq.NewBigQuery(context.Background(), dlq.BigQueryConfig{Project: "p", Dataset: "ops", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bq.Close() })
	return map[string]dlq.Archive{
		"jsonl":    &dlq.JSONL{Path: dlqtest.WriteJSONL(t, entries()...)},
		"bigquery": bq,
	}
}

func ids(es []dlq.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.MessageID)
	}
	return out
}

func TestArchiveConformance(t *testing.T) {
	for name, a := range archives(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			all, err := a.List(ctx, dlq.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(all); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
				t.Fatalf("list all = %v", got)
			}
			cases := []struct {
				f    dlq.Filter
				want []string
			}{
				{dlq.Filter{Subscription: "payment--order.created"}, []string{"m1", "m3"}},
				{dlq.Filter{Subscription: "projects/p/subscriptions/shipment--payment.processed"}, []string{"m2"}},
				{dlq.Filter{Type: "com.example.payments.payment.processed.v1"}, []string{"m2"}},
				{dlq.Filter{Since: dlqtest.Time("2030-01-01T11:00:00Z")}, []string{"m2", "m3"}},
				{dlq.Filter{Until: dlqtest.Time("2030-01-01T11:00:00Z")}, []string{"m1"}},
				{dlq.Filter{Limit: 2}, []string{"m1", "m2"}},
			}
			for _, c := range cases {
				got, err := a.List(ctx, c.f)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ids(got), c.want) {
					t.Errorf("List(%+v) = %v, want %v", c.f, ids(got), c.want)
				}
			}
			e, err := a.Get(ctx, "m2")
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Body) != "\xff\x00\x01" || e.BodyEncoding != dlarchive.EncodingBase64 {
				t.Errorf("body %q (%s)", e.Body, e.BodyEncoding)
			}
			if class, _ := e.Reason(); class != dlarchive.ReasonDeliveryAttempts || e.Attempts() != 5 || e.SourceSubscription() != "shipment--payment.processed" || e.Topic() != "" {
				t.Errorf("entry m2 decoded as %+v", e)
			}
			e, err = a.Get(ctx, "m1")
			if err != nil {
				t.Fatal(err)
			}
			if e.EventID() != "e1" || e.Topic() != "order.created" || !e.PublishTime.Equal(dlqtest.Time("2030-01-01T09:59:00Z")) || e.DeliveryAttempts != 1 {
				t.Errorf("entry m1 decoded as %+v", e)
			}
			if _, err := a.Get(ctx, "nope"); !errors.Is(err, dlq.ErrNotFound) {
				t.Errorf("Get(nope) = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestBigQueryPushesFilterIntoQuery(t *testing.T) {
	srv := dlqtest.NewBigQuery(t, entries()...)
	bq, err := dlq.NewBigQuery(context.Background(), dlq.BigQueryConfig{Project: "p", Dataset: "ops", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer bq.Close()
	_, err = bq.List(context.Background(), dlq.Filter{Subscription: "projects/p/subscriptions/s", Type: "t",
		Since: dlqtest.Time("2030-01-01T00:00:00Z"), Until: dlqtest.Time("2030-01-02T00:00:00Z"), Limit: 7})
	if err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	for _, want := range []string{"`p.ops.dead_letters`", "dead_lettered_at >= @since", "dead_lettered_at < @until", "@type", "@subscription", "LIMIT @limit", "copy_number = 1"} {
		if !strings.Contains(r.Query, want) {
			t.Errorf("query lacks %q:\n%s", want, r.Query)
		}
	}
	if r.Parameters["subscription"] != "s" || r.Parameters["type"] != "t" || r.Parameters["limit"] != "7" || !strings.HasPrefix(r.Parameters["since"], "2030-01-01 00:00:00") {
		t.Errorf("parameters %v", r.Parameters)
	}
}

func TestJSONLErrors(t *testing.T) {
	ctx := context.Background()
	missing := &dlq.JSONL{Path: filepath.Join(t.TempDir(), "none.jsonl")}
	if _, err := missing.List(ctx, dlq.Filter{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	path := dlqtest.WriteJSONL(t, entries()[0])
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A partial last line (being appended) is skipped.
	f.WriteString(`{"message_id":"m9","body_enc`)
	f.Close()
	got, err := (&dlq.JSONL{Path: path}).List(ctx, dlq.Filter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("partial last line: %v %v", ids(got), err)
	}
	// A complete bad line is an error naming it.
	os.WriteFile(path, []byte("\n{\"message_id\":\"x\"}\nnot json\n"), 0o644)
	if _, err := (&dlq.JSONL{Path: path}).List(ctx, dlq.Filter{}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}

func TestDuplicateArchiveRowsCountOnce(t *testing.T) {
	e := entries()[0]
	later := e
	later.ReceivedAt = e.DeadLetteredAt.Add(time.Second)
	later.ReasonMessage = "second copy"
	rec := func(e dlq.Entry) map[string]any {
		return map[string]any{"table": "dead_letters", "insert_id": e.MessageID, "row": dlqtest.Row(e)}
	}
	a := &dlq.JSONL{Path: dlqtest.WriteLines(t, rec(later), rec(e))}
	got, err := a.List(context.Background(), dlq.Filter{})
	if err != nil || len(got) != 1 || got[0].ReasonMessage != e.ReasonMessage {
		t.Fatalf("got %+v, %v", got, err)
	}
	g := dlq.Groups(append(got, entries()...))
	if g[0].Count != 3 || g[0].Subscription != "payment--order.created" || g[0].ReasonClass != "permanent" {
		t.Errorf("groups %+v", g)
	}
}

// Records of other tables in a shared file are skipped; bare rows are read.
func TestJSONLRecordFormats(t *testing.T) {
	es := entries()
	path := dlqtest.WriteLines(t,
		map[string]any{"table": "events", "insert_id": "x", "row": map[string]any{"event_id": "x"}},
		map[string]any{"table": "dead_letters", "insert_id": "m1", "row": dlqtest.Row(es[0])},
		dlqtest.Row(es[1]),
	)
	got, err := (&dlq.JSONL{Path: path}).List(context.Background(), dlq.Filter{})
	if err != nil || !slices.Equal(ids(got), []string{"m1", "m2"}) {
		t.Fatalf("got %v, %v", ids(got), err)
	}
}
