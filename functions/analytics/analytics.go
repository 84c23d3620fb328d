// Package analytics is the analytics function: it consumes every domain
// topic and writes one row per event to the BigQuery table "events".
//
// The table schema is declared once, in schema/events.json: Terraform reads
// it with file() to create the table, and this package embeds it to check,
// in tests, that every row it builds matches.
//
// Delivery and idempotency: rows are written with BigQuery streaming inserts
// (see shared/warehouse) whose insertId is the event id, so a redelivered
// event within about a minute is written once. There is no idempotency
// store (manifest idempotency: none): a later duplicate may produce a second
// row, and queries deduplicate on event_id (for example
// QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY received_at) = 1).
//
// Errors: a row BigQuery rejects (insertErrors: the table's schema no
// longer matches) is permanent: the event is dead-lettered to analytics.dlq
// and acknowledged. 5xx, quota and rate-limit errors are transient: the
// push answers 503 and Pub/Sub redelivers.
package analytics

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"time"

	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/warehouse"
	"example.com/platform/shared/warehouse/sinkenv"
)

// Table is the BigQuery table the function writes to.
const Table = "events"

//go:embed schema/events.json
var eventsSchemaJSON []byte

// EventsSchema is the schema of Table, parsed from schema/events.json.
var EventsSchema = warehouse.MustParseSchema(eventsSchemaJSON)

// Tables maps Table to its schema (for the JSONL and memory sinks).
func Tables() map[string]warehouse.Schema {
	return map[string]warehouse.Schema{Table: EventsSchema}
}

// Service records events. It is safe for concurrent use.
type Service struct {
	// Sink receives the rows.
	Sink warehouse.Sink
	// Now is the clock for received_at. Default time.Now.
	Now func() time.Time
}

// Record writes the row of one decoded event. Its errors keep the sink's
// classification (permanent rejections, transient outages).
func (s *Service) Record(ctx context.Context, ev handler.Event[events.Payload]) error {
	in := ev.Incoming
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	row := EventRow(in, now())
	if err := s.Sink.Insert(ctx, Table, []warehouse.Row{row}); err != nil {
		return fmt.Errorf("record event %s: %w", in.Event.ID(), err)
	}
	return nil
}

// EventRow is the row of one event: the columns of schema/events.json,
// with insertId = the event id. Optional columns the delivery did not
// carry are NULL.
func EventRow(in *events.Incoming, receivedAt time.Time) warehouse.Row {
	ev := in.Event
	v := map[string]any{
		"event_id":         ev.ID(),
		"event_type":       ev.Type(),
		"source":           ev.Source(),
		"subject":          nullable(ev.Subject()),
		"event_time":       ev.Time(),
		"received_at":      receivedAt,
		"ordering_key":     nullable(in.Delivery.OrderingKey),
		"data":             nil,
		"trace_id":         nil,
		"delivery_attempt": nil,
		"subscription":     nullable(in.Delivery.Subscription),
	}
	if d := ev.Data(); len(d) > 0 {
		v["data"] = json.RawMessage(d)
	}
	if tc, ok := in.Trace(); ok {
		v["trace_id"] = tc.TraceID
	}
	if in.Delivery.Attempt > 0 {
		v["delivery_attempt"] = in.Delivery.Attempt
	}
	return warehouse.Row{InsertID: ev.ID(), Values: v}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// EntryPoint is the function's entry point (function.yaml entry_point).
const EntryPoint = "Analytics"

// Environment variables read besides app's common ones (see package
// sinkenv).
const (
	// EnvProject and EnvDataset name the analytics dataset (set by
	// Terraform). Required with the bigquery sink.
	EnvProject = sinkenv.EnvProject
	EnvDataset = sinkenv.EnvDataset
	// EnvSink selects the sink: bigquery (default), jsonl or memory. The
	// last two are for local runs and log a WARNING at start.
	EnvSink = "ANALYTICS_SINK"
	// EnvJSONLPath is the jsonl sink's file (default analytics-events.jsonl).
	EnvJSONLPath = "ANALYTICS_JSONL_PATH"
	// EnvInsertTimeout bounds one insert including the client's own
	// retries (Go duration, default 10s).
	EnvInsertTimeout = sinkenv.EnvInsertTimeout
)

// sinkEnv is the function's warehouse sink configuration.
var sinkEnv = sinkenv.Config{Sink: EnvSink, JSONLPath: EnvJSONLPath, DefaultJSONLPath: "analytics-events.jsonl"}
