// Package dlq reads the dead-letter archive: the rows the dead-letter
// function writes, one per dead-lettered message, into the BigQuery table
// dead_letters (columns: functions/deadletter/schema/dead_letters.json), or,
// on the local stack without a BigQuery emulator, into a JSON-lines file
// with the same columns.
//
// Two implementations of Archive read them: BigQuery (the real client,
// jobs.query) and JSONL. Both decode rows with DecodeRow, filter with
// Filter.Match semantics and return entries ordered by dead-letter time,
// one per message id (the archive is written at least once, so a message
// may have been archived twice; the first received copy wins).
package dlq

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/warehouse"
)

// Columns are the columns of the dead_letters table, in schema order. A
// test keeps them equal to functions/deadletter/schema/dead_letters.json.
var Columns = []string{
	"message_id", "original_topic", "subscription", "attributes", "body", "body_encoding",
	"reason_class", "reason_message", "delivery_attempts", "publish_time", "dead_lettered_at", "received_at",
}

// Attributes real Pub/Sub adds when it forwards a message to a dead-letter
// topic after the subscription's maximum delivery attempts.
const (
	AttrPubSubSourceSubscription = "CloudPubSubDeadLetterSourceSubscription"
	AttrPubSubSourceProject      = "CloudPubSubDeadLetterSourceSubscriptionProject"
	AttrPubSubSourcePublishTime  = "CloudPubSubDeadLetterSourceTopicPublishTime"
	AttrPubSubDeliveryCount      = "CloudPubSubDeadLetterSourceDeliveryCount"
	// PubSubAttrPrefix prefixes every attribute Pub/Sub's dead-lettering adds.
	PubSubAttrPrefix = "CloudPubSubDeadLetterSource"
	// ReasonAttrPrefix prefixes the reason attributes of package deadletter.
	ReasonAttrPrefix = "dlq-"
)

// ReasonDeliveryAttempts is the reason class of a message Pub/Sub itself
// dead-lettered after the maximum delivery attempts.
const ReasonDeliveryAttempts = "delivery_attempts"

// Body encodings of the body column.
const (
	EncodingUTF8   = "utf8"
	EncodingBase64 = "base64"
)

// ErrNotFound is returned by Archive.Get for an unknown message id.
var ErrNotFound = errors.New("no such dead letter")

// Entry is one archived dead letter.
type Entry struct {
	// MessageID is the archive's id of the dead letter (the Pub/Sub
	// message id on the dead-letter topic): what `dlq show` takes.
	MessageID     string
	OriginalTopic string // column; see Topic for the resolved value
	Subscription  string // column; see SourceSubscription
	// Attributes are every attribute of the dead-lettered message: the
	// original ones (ce-*, traceparent, Content-Type) and the reason
	// attributes (dlq-*, CloudPubSubDeadLetterSource*).
	Attributes map[string]string
	// Body is the message body, decoded (base64 undone).
	Body []byte
	// BodyEncoding is how the archive stored Body: utf8 or base64.
	BodyEncoding     string
	ReasonClass      string
	ReasonMessage    string
	DeliveryAttempts int64
	PublishTime      time.Time
	DeadLetteredAt   time.Time
	ReceivedAt       time.Time
}

// EventID returns the CloudEvent id (ce-id attribute).
func (e Entry) EventID() string { return e.Attributes["ce-id"] }

// Type returns the CloudEvent type (ce-type attribute).
func (e Entry) Type() string { return e.Attributes["ce-type"] }

// Topic returns the topic id the message was first published to: the
// original_topic column, else the dlq-source-topic attribute; "" when
// neither is known (a message Pub/Sub dead-lettered carries only its
// subscription, whose topic the caller must look up).
func (e Entry) Topic() string {
	for _, t := range []string{e.OriginalTopic, e.Attributes[deadletter.AttrSourceTopic]} {
		if t != "" {
			return ResourceID(t)
		}
	}
	return ""
}

// SourceSubscription returns the id of the subscription that gave up on
// the message: the subscription column, else dlq-subscription, else the
// CloudPubSubDeadLetterSourceSubscription attribute.
func (e Entry) SourceSubscription() string {
	for _, s := range []string{e.Subscription, e.Attributes[deadletter.AttrSubscription], e.Attributes[AttrPubSubSourceSubscription]} {
		if s != "" {
			return ResourceID(s)
		}
	}
	return ""
}

// Reason returns the reason class and message: the columns, else the
// reason attributes; a message Pub/Sub dead-lettered after its delivery
// attempts has class delivery_attempts.
func (e Entry) Reason() (class, message string) {
	class, message = e.ReasonClass, e.ReasonMessage
	if class == "" {
		class = e.Attributes[deadletter.AttrReasonClass]
	}
	if message == "" {
		message = e.Attributes[deadletter.AttrReason]
	}
	if class == "" && e.Attributes[AttrPubSubDeliveryCount] != "" {
		class = ReasonDeliveryAttempts
	}
	if message == "" && e.Attributes[AttrPubSubDeliveryCount] != "" {
		message = "maximum delivery attempts reached (" + e.Attributes[AttrPubSubDeliveryCount] + ")"
	}
	return class, message
}

// Attempts returns the delivery attempts: the column, else the
// attributes of Pub/Sub or package deadletter; 0 when unknown.
func (e Entry) Attempts() int64 {
	if e.DeliveryAttempts > 0 {
		return e.DeliveryAttempts
	}
	for _, a := range []string{AttrPubSubDeliveryCount, deadletter.AttrAttempt} {
		if n, err := strconv.ParseInt(e.Attributes[a], 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// ResourceID returns the last path element of a resource name
// ("projects/p/topics/t" -> "t"); an id is returned unchanged.
func ResourceID(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// Filter selects dead letters. The zero Filter selects everything.
type Filter struct {
	// Subscription matches SourceSubscription (an id or a full name).
	Subscription string
	// Type matches the CloudEvent type exactly.
	Type string
	// Since and Until bound DeadLetteredAt: Since <= t < Until. Zero
	// values leave that side open.
	Since, Until time.Time
	// Limit is the most entries returned (the oldest first); 0 means all.
	Limit int
}

// Match reports whether e passes every condition of f but Limit.
func (f Filter) Match(e Entry) bool {
	if f.Subscription != "" && e.SourceSubscription() != ResourceID(f.Subscription) {
		return false
	}
	if f.Type != "" && e.Type() != f.Type {
		return false
	}
	if !f.Since.IsZero() && e.DeadLetteredAt.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.DeadLetteredAt.Before(f.Until) {
		return false
	}
	return true
}

// Archive is a source of archived dead letters. Implementations are safe
// for concurrent use and read only: nothing here deletes or changes a row.
type Archive interface {
	// List returns the entries matching f (Filter.Match), one per message
	// id, ordered by DeadLetteredAt then MessageID, at most f.Limit.
	List(ctx context.Context, f Filter) ([]Entry, error)
	// Get returns the entry with message id id, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, id string) (Entry, error)
	// String names the archive and where it lives, for messages.
	String() string
}

// sortDedupLimit orders entries, keeps the first received copy of each
// message id and applies limit.
func sortDedupLimit(entries []Entry, limit int) []Entry {
	slices.SortStableFunc(entries, func(a, b Entry) int {
		if c := a.DeadLetteredAt.Compare(b.DeadLetteredAt); c != 0 {
			return c
		}
		if c := strings.Compare(a.MessageID, b.MessageID); c != 0 {
			return c
		}
		return a.ReceivedAt.Compare(b.ReceivedAt)
	})
	seen := map[string]bool{}
	out := entries[:0]
	for _, e := range entries {
		if seen[e.MessageID] {
			continue
		}
		seen[e.MessageID] = true
		out = append(out, e)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// DecodeRow converts one archive row to an Entry. It accepts the forms
// both sources produce: the insertAll JSON form written by the
// warehouse sinks (TIMESTAMP as text or epoch seconds, INTEGER as number
// or text, the JSON attributes column as a string holding an object or
// as an object) and the Go values the BigQuery client returns
// (time.Time, int64, string). Unknown columns are ignored.
func DecodeRow(row map[string]any) (Entry, error) {
	var e Entry
	var err error
	str := func(col string) string {
		if err != nil {
			return ""
		}
		var s string
		s, err = asString(row[col])
		if err != nil {
			err = fmt.Errorf("column %s: %w", col, err)
		}
		return s
	}
	ts := func(col string, required bool) time.Time {
		if err != nil {
			return time.Time{}
		}
		v := row[col]
		if v == nil {
			if required {
				err = fmt.Errorf("column %s: missing", col)
			}
			return time.Time{}
		}
		t, ok := warehouse.ParseTimestamp(v)
		if !ok {
			err = fmt.Errorf("column %s: not a timestamp: %v", col, v)
		}
		return t
	}
	e.MessageID = str("message_id")
	e.OriginalTopic = str("original_topic")
	e.Subscription = str("subscription")
	e.BodyEncoding = str("body_encoding")
	e.ReasonClass = str("reason_class")
	e.ReasonMessage = str("reason_message")
	body := str("body")
	e.PublishTime = ts("publish_time", false)
	e.DeadLetteredAt = ts("dead_lettered_at", true)
	e.ReceivedAt = ts("received_at", false)
	if err != nil {
		return Entry{}, err
	}
	if e.MessageID == "" {
		return Entry{}, errors.New("column message_id: missing")
	}
	if e.Attributes, err = decodeAttributes(row["attributes"]); err != nil {
		return Entry{}, fmt.Errorf("column attributes: %w", err)
	}
	if e.DeliveryAttempts, err = asInt(row["delivery_attempts"]); err != nil {
		return Entry{}, fmt.Errorf("column delivery_attempts: %w", err)
	}
	switch e.BodyEncoding {
	case EncodingBase64:
		if e.Body, err = base64.StdEncoding.DecodeString(body); err != nil {
			return Entry{}, fmt.Errorf("column body: base64: %w", err)
		}
	case EncodingUTF8, "":
		e.Body = []byte(body)
	default:
		return Entry{}, fmt.Errorf("column body_encoding: unknown encoding %q", e.BodyEncoding)
	}
	return e, nil
}

func asString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	default:
		return "", fmt.Errorf("not a string: %T", v)
	}
}

func asInt(v any) (int64, error) {
	switch x := v.(type) {
	case nil:
		return 0, nil
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case float64:
		return int64(x), nil
	case json.Number:
		return x.Int64()
	case string:
		if x == "" {
			return 0, nil
		}
		return strconv.ParseInt(x, 10, 64)
	default:
		return 0, fmt.Errorf("not an integer: %T", v)
	}
}

// decodeAttributes reads the JSON column: a string holding a JSON object
// (insertAll form, BigQuery client) or an object.
func decodeAttributes(v any) (map[string]string, error) {
	out := map[string]string{}
	var obj map[string]any
	switch x := v.(type) {
	case nil:
		return out, nil
	case string:
		if strings.TrimSpace(x) == "" || x == "null" {
			return out, nil
		}
		if err := json.Unmarshal([]byte(x), &obj); err != nil {
			return nil, fmt.Errorf("not a JSON object: %w", err)
		}
	case map[string]any:
		obj = x
	default:
		return nil, fmt.Errorf("not a JSON object: %T", v)
	}
	for k, val := range obj {
		switch s := val.(type) {
		case string:
			out[k] = s
		case nil:
		default:
			b, _ := json.Marshal(s)
			out[k] = string(b)
		}
	}
	return out, nil
}

// Group counts the dead letters of one subscription and reason.
type Group struct {
	Subscription  string
	ReasonClass   string
	ReasonMessage string
	Count         int
	First, Last   time.Time
}

// Groups counts entries by subscription, reason class and reason message,
// the largest group first.
func Groups(entries []Entry) []Group {
	type key struct{ sub, class, msg string }
	m := map[key]*Group{}
	for _, e := range entries {
		class, msg := e.Reason()
		k := key{e.SourceSubscription(), class, msg}
		g := m[k]
		if g == nil {
			g = &Group{Subscription: k.sub, ReasonClass: class, ReasonMessage: msg, First: e.DeadLetteredAt, Last: e.DeadLetteredAt}
			m[k] = g
		}
		g.Count++
		if e.DeadLetteredAt.Before(g.First) {
			g.First = e.DeadLetteredAt
		}
		if e.DeadLetteredAt.After(g.Last) {
			g.Last = e.DeadLetteredAt
		}
	}
	out := make([]Group, 0, len(m))
	for _, k := range slices.SortedFunc(maps.Keys(m), func(a, b key) int {
		return strings.Compare(a.sub+"\x00"+a.class+"\x00"+a.msg, b.sub+"\x00"+b.class+"\x00"+b.msg)
	}) {
		out = append(out, *m[k])
	}
	slices.SortStableFunc(out, func(a, b Group) int { return b.Count - a.Count })
	return out
}
