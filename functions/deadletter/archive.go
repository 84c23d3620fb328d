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
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	dl "example.com/platform/shared/deadletter"
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

// Attributes Pub/Sub adds when it forwards a message to a dead-letter topic
// itself, after the subscription's maximum delivery attempts. Push headers
// lose their case; look them up with events.LookupAttribute.
const (
	AttrPubSubDeliveryCount       = "CloudPubSubDeadLetterSourceDeliveryCount"
	AttrPubSubSubscription        = "CloudPubSubDeadLetterSourceSubscription"
	AttrPubSubSubscriptionProject = "CloudPubSubDeadLetterSourceSubscriptionProject"
	AttrPubSubTopicPublishTime    = "CloudPubSubDeadLetterSourceTopicPublishTime"
)

// Values of the body_encoding and reason_class columns.
const (
	EncodingUTF8   = "utf8"
	EncodingBase64 = "base64"
	// ReasonDeliveryAttempts is the reason class of a message Pub/Sub
	// dead-lettered after the subscription's maximum delivery attempts.
	ReasonDeliveryAttempts = "delivery_attempts"
)

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

// ArchiveRow is the dead_letters row of one delivery:
//
//   - message_id: the dead-letter message's Pub/Sub id (also the insertId);
//     when the push carried none, "sha256:<hash of body and attributes>",
//     stable across redeliveries;
//   - original_topic: dlq-source-topic, else the topic of the ce-type, else
//     the topic in the subscription id "<function>--<topic>";
//   - subscription: dlq-subscription, else Pub/Sub's
//     CloudPubSubDeadLetterSourceSubscription (as a full name when its
//     project is known);
//   - attributes: every attribute, as a JSON object;
//   - body: the text when valid UTF-8 (body_encoding utf8), else base64;
//   - reason_class / reason_message: dlq-reason-class / dlq-reason, else
//     "delivery_attempts" and a sentence when Pub/Sub dead-lettered it;
//   - delivery_attempts: dlq-delivery-attempt, else
//     CloudPubSubDeadLetterSourceDeliveryCount;
//   - publish_time: dlq-publish-time, else
//     CloudPubSubDeadLetterSourceTopicPublishTime when Pub/Sub gives it,
//     else NULL;
//   - dead_lettered_at: dlq-time, else the dead-letter message's publish
//     time, else receivedAt.
func ArchiveRow(in *events.Incoming, receivedAt time.Time) warehouse.Row {
	attrs := in.Message.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	get := func(k string) string { return events.LookupAttribute(attrs, k) }

	id := in.Delivery.MessageID
	if id == "" {
		id = contentID(in.Message.Data, attrs)
	}
	attrJSON, _ := json.Marshal(attrs) // map[string]string always encodes

	body, enc := string(in.Message.Data), EncodingUTF8
	if !utf8.Valid(in.Message.Data) {
		body, enc = base64.StdEncoding.EncodeToString(in.Message.Data), EncodingBase64
	}

	pubsubCount := get(AttrPubSubDeliveryCount)
	reasonClass, reason := get(dl.AttrReasonClass), get(dl.AttrReason)
	if reasonClass == "" && pubsubCount != "" {
		reasonClass = ReasonDeliveryAttempts
		if reason == "" {
			reason = "Pub/Sub gave up after " + pubsubCount + " delivery attempts"
		}
	}
	attempts := get(dl.AttrAttempt)
	if attempts == "" {
		attempts = pubsubCount
	}

	sub := get(dl.AttrSubscription)
	if sub == "" {
		if s := get(AttrPubSubSubscription); s != "" {
			sub = s
			if p := get(AttrPubSubSubscriptionProject); p != "" && !strings.HasPrefix(s, "projects/") {
				sub = "projects/" + p + "/subscriptions/" + s
			}
		}
	}

	deadAt, ok := parseTime(get(dl.AttrDeadLetteredAt))
	if !ok {
		deadAt, ok = in.Delivery.PublishTime, !in.Delivery.PublishTime.IsZero()
	}
	if !ok {
		deadAt = receivedAt
	}

	v := map[string]any{
		"message_id":        id,
		"original_topic":    nullable(originalTopic(attrs, sub)),
		"subscription":      nullable(sub),
		"attributes":        json.RawMessage(attrJSON),
		"body":              body,
		"body_encoding":     enc,
		"reason_class":      nullable(reasonClass),
		"reason_message":    nullable(reason),
		"delivery_attempts": nil,
		"publish_time":      nil,
		"dead_lettered_at":  deadAt,
		"received_at":       receivedAt,
	}
	if n, err := strconv.Atoi(attempts); err == nil && n > 0 {
		v["delivery_attempts"] = n
	}
	if t, ok := parseTime(get(dl.AttrPublishTime)); ok {
		v["publish_time"] = t
	} else if t, ok := parseTime(get(AttrPubSubTopicPublishTime)); ok {
		v["publish_time"] = t
	}
	return warehouse.Row{InsertID: id, Values: v}
}

// originalTopic finds the topic the message was first published to.
func originalTopic(attrs map[string]string, subscription string) string {
	if t := events.LookupAttribute(attrs, dl.AttrSourceTopic); t != "" {
		return t
	}
	if t, err := events.TopicFor(events.LookupAttribute(attrs, events.AttrType)); err == nil {
		return t
	}
	// Subscriptions are named "<function>--<topic>" (docs/infrastructure.md).
	subID := subscription[strings.LastIndex(subscription, "/")+1:]
	if _, topic, ok := strings.Cut(subID, "--"); ok {
		return topic
	}
	return ""
}

// contentID identifies a message without a message id by its content.
func contentID(data []byte, attrs map[string]string) string {
	h := sha256.New()
	h.Write(data)
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		fmt.Fprintf(h, "\x00%s\x00%s", k, attrs[k])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if t, ok := warehouse.ParseTimestamp(s); ok {
		return t, true
	}
	return time.Time{}, false
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
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
