// Package deadletter is the dead-letter archive: it consumes every other
// function's dead-letter topic and writes each message to the BigQuery
// table "dead_letters" (schema/dead_letters.json, which Terraform also
// reads).
//
// It never drops a message. It does not run the normal decode-and-
// dead-letter chain (a dead-letter consumer must not dead-letter to
// itself): it reconstructs the Pub/Sub message and its delivery metadata
// from either push shape with events.DecodeRequest, ignores whether the
// body is a valid event, and inserts one row. A message it cannot archive
// (BigQuery unavailable, or rejecting the row) is answered with 5xx so
// Pub/Sub redelivers it; after the subscription's maximum delivery attempts
// Pub/Sub forwards it to deadletter.dlq, whose retained subscription is the
// last resort.
//
// The row's insertId is the dead-letter message's Pub/Sub message id, so a
// redelivery within about a minute is written once.
package deadletter

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"time"

	dlarchive "example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/events"
	"example.com/platform/shared/warehouse"
	"example.com/platform/shared/warehouse/sinkenv"
)

// Table is the BigQuery table of archived dead letters.
const Table = "dead_letters"

//go:embed schema/dead_letters.json
var deadLettersSchemaJSON []byte

// DeadLettersSchema is the schema of Table, parsed from
// schema/dead_letters.json.
var DeadLettersSchema = warehouse.MustParseSchema(deadLettersSchemaJSON)

// Tables maps Table to its schema (for the JSONL and memory sinks).
func Tables() map[string]warehouse.Schema {
	return map[string]warehouse.Schema{Table: DeadLettersSchema}
}

// Service archives dead letters. It is safe for concurrent use.
type Service struct {
	Sink warehouse.Sink
	// Now is the clock for received_at. Default time.Now.
	Now func() time.Time
}

// Archive writes the row of one dead-letter delivery. in needs only
// Message and Delivery (what DecodeRequest returns even for a body it
// cannot decode).
func (s *Service) Archive(ctx context.Context, in *events.Incoming) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	row := ArchiveRow(in, now())
	if err := s.Sink.Insert(ctx, Table, []warehouse.Row{row}); err != nil {
		return fmt.Errorf("archive dead letter %s: %w", row.InsertID, err)
	}
	return nil
}

// ArchiveRow is the dead_letters row of one delivery: the record
// dlarchive.NewRecord builds (its documentation lists every column's
// source) from the message and its delivery metadata, with the topic of
// the event's ce-type (the registry) as the second choice of
// original_topic. A dead letter whose body was too large to publish holds
// a deadletter.BodyReference in body, as the message did; its
// dlq-body-omitted attribute says so.
func ArchiveRow(in *events.Incoming, receivedAt time.Time) warehouse.Row {
	return dlarchive.NewRecord(in.Message, dlarchive.Received{
		MessageID:   in.Delivery.MessageID,
		PublishTime: in.Delivery.PublishTime,
		At:          receivedAt,
		TopicOfType: func(typ string) string {
			t, _ := events.TopicFor(typ)
			return t
		},
	}).Row()
}

// EntryPoint is the function's entry point (function.yaml entry_point).
const EntryPoint = "DeadLetter"

// Environment variables read besides app's common ones (see package
// sinkenv).
const (
	// EnvProject and EnvDataset name the analytics dataset (set by
	// Terraform). Required with the bigquery sink.
	EnvProject = sinkenv.EnvProject
	EnvDataset = sinkenv.EnvDataset
	// EnvSink selects the sink: bigquery (default), jsonl or memory. The
	// last two are for local runs and log a WARNING at start.
	EnvSink = "DEADLETTER_SINK"
	// EnvJSONLPath is the jsonl sink's file (default dead-letters.jsonl).
	EnvJSONLPath = "DEADLETTER_JSONL_PATH"
	// EnvInsertTimeout bounds one insert including the client's own
	// retries (Go duration, default 10s).
	EnvInsertTimeout = sinkenv.EnvInsertTimeout
)

// sinkEnv is the function's warehouse sink configuration.
var sinkEnv = sinkenv.Config{Sink: EnvSink, JSONLPath: EnvJSONLPath, DefaultJSONLPath: "dead-letters.jsonl"}

// archiver is the Service with the function's logger.
type archiver struct {
	*Service
	logger *slog.Logger
}

func (a *archiver) archive(ctx context.Context, in *events.Incoming, decodeErr error) error {
	if decodeErr != nil {
		a.logger.InfoContext(ctx, "archiving a dead letter that is not a valid event", "decode_error", decodeErr.Error())
	}
	return a.Archive(ctx, in)
}
