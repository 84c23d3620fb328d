// Package archive is the dead-letter archive's row format: the record of
// one dead letter (Record), built from a delivered dead letter by
// NewRecord, encoded for the dead_letters table by Record.Row and read back
// by DecodeRow. The archive function writes it; eventctl reads it.
//
// It is a package of its own so that every function that only publishes
// dead letters (package deadletter) does not link the BigQuery client.
package archive

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/warehouse"
)

// Values of the archive's body_encoding and reason_class columns.
const (
	EncodingUTF8   = "utf8"
	EncodingBase64 = "base64"
	// ReasonDeliveryAttempts is the reason class of a message Pub/Sub
	// dead-lettered after the subscription's maximum delivery attempts.
	ReasonDeliveryAttempts = "delivery_attempts"
)

// Columns are the columns of the archive table (dead_letters), in schema
// order. A test keeps them equal to
// functions/deadletter/schema/dead_letters.json.
var Columns = []string{
	"message_id", "original_topic", "subscription", "attributes", "body", "body_encoding",
	"reason_class", "reason_message", "delivery_attempts", "publish_time", "dead_lettered_at", "received_at",
}

// Record is one archived dead letter: a row of the archive table. The
// dead-letter archive function builds it with NewRecord and writes Row;
// readers (eventctl) get it back with DecodeRow.
type Record struct {
	// MessageID is the archive's id of the dead letter: the Pub/Sub
	// message id on the dead-letter topic, or "sha256:<hash of body and
	// attributes>" when the delivery carried none. It is the insertId.
	MessageID     string
	OriginalTopic string // column; see Topic for the resolved value
	Subscription  string // column; see SourceSubscription
	// Attributes are every attribute of the dead-lettered message: the
	// original ones (ce-*, traceparent, Content-Type) and the reason
	// attributes (dlq-*, CloudPubSubDeadLetterSource*).
	Attributes map[string]string
	// Body is the message body, decoded (base64 undone). For a message
	// whose body was too large to dead-letter (deadletter.AttrBodyOmitted)
	// it is the deadletter.BodyReference document; see Reference.
	Body []byte
	// BodyEncoding is how the row stores Body: EncodingUTF8 or
	// EncodingBase64 (Row picks base64 for a body that is not UTF-8).
	BodyEncoding     string
	ReasonClass      string
	ReasonMessage    string
	DeliveryAttempts int64
	PublishTime      time.Time // zero when unknown (NULL)
	DeadLetteredAt   time.Time
	ReceivedAt       time.Time
}

// Received describes the delivery of a dead letter to the archive.
type Received struct {
	// MessageID is the dead-letter message's Pub/Sub id; "" derives a
	// stable content id.
	MessageID string
	// PublishTime is when the dead letter was published; zero if unknown.
	PublishTime time.Time
	// At is when the archive received it.
	At time.Time
	// TopicOfType, when set, maps a CloudEvent type to the topic it is
	// published to (a registry lookup); "" means unknown.
	TopicOfType func(ceType string) string
}

// NewRecord is the archive record of dead letter m:
//
//   - MessageID: r.MessageID, else "sha256:<hash of body and attributes>",
//     stable across redeliveries;
//   - OriginalTopic: dlq-source-topic, else r.TopicOfType(ce-type), else
//     the topic in the subscription id "<function>--<topic>";
//   - Subscription: dlq-subscription, else Pub/Sub's
//     CloudPubSubDeadLetterSourceSubscription (as a full name when its
//     project is known);
//   - BodyEncoding: utf8 when the body is valid UTF-8, else base64;
//   - ReasonClass / ReasonMessage: dlq-reason-class / dlq-reason, else
//     "delivery_attempts" and a sentence when Pub/Sub dead-lettered it;
//   - DeliveryAttempts: dlq-delivery-attempt, else
//     CloudPubSubDeadLetterSourceDeliveryCount;
//   - PublishTime: dlq-publish-time, else
//     CloudPubSubDeadLetterSourceTopicPublishTime, else zero;
//   - DeadLetteredAt: dlq-time, else r.PublishTime, else r.At.
//
// Attribute names are matched without regard to case (push headers).
func NewRecord(m messaging.Message, r Received) Record {
	// Text columns hold UTF-8: an invalid byte in an attribute or id (a
	// push header can carry one; Pub/Sub itself cannot) becomes U+FFFD
	// here, as the JSON encoding of the row would make it anyway, so the
	// record is what the archive stores.
	attrs := make(map[string]string, len(m.Attributes))
	for _, k := range slices.Sorted(maps.Keys(m.Attributes)) {
		attrs[validText(k)] = validText(m.Attributes[k])
	}
	get := func(k string) string { return deadletter.Lookup(attrs, k) }
	rec := Record{
		MessageID:    validText(r.MessageID),
		Attributes:   attrs,
		Body:         append([]byte(nil), m.Data...),
		BodyEncoding: EncodingUTF8,
		ReceivedAt:   r.At,
	}
	if rec.MessageID == "" {
		rec.MessageID = contentID(m.Data, m.Attributes)
	}
	if !utf8.Valid(m.Data) {
		rec.BodyEncoding = EncodingBase64
	}

	pubsubCount := get(deadletter.AttrPubSubDeliveryCount)
	rec.ReasonClass, rec.ReasonMessage = get(deadletter.AttrReasonClass), get(deadletter.AttrReason)
	if rec.ReasonClass == "" && pubsubCount != "" {
		rec.ReasonClass = ReasonDeliveryAttempts
		if rec.ReasonMessage == "" {
			rec.ReasonMessage = "Pub/Sub gave up after " + pubsubCount + " delivery attempts"
		}
	}
	attempts := get(deadletter.AttrAttempt)
	if attempts == "" {
		attempts = pubsubCount
	}
	if n, err := strconv.ParseInt(attempts, 10, 64); err == nil && n > 0 {
		rec.DeliveryAttempts = n
	}

	rec.Subscription = get(deadletter.AttrSubscription)
	if rec.Subscription == "" {
		if s := get(deadletter.AttrPubSubSubscription); s != "" {
			rec.Subscription = s
			if p := get(deadletter.AttrPubSubSubscriptionProject); p != "" && !strings.HasPrefix(s, "projects/") {
				rec.Subscription = "projects/" + p + "/subscriptions/" + s
			}
		}
	}

	rec.OriginalTopic = get(deadletter.AttrSourceTopic)
	if rec.OriginalTopic == "" && r.TopicOfType != nil {
		rec.OriginalTopic = validText(r.TopicOfType(get("ce-type")))
	}
	if rec.OriginalTopic == "" {
		// Subscriptions are named "<function>--<topic>" (docs/infrastructure.md).
		if _, topic, ok := strings.Cut(ResourceID(rec.Subscription), "--"); ok {
			rec.OriginalTopic = topic
		}
	}

	var ok bool
	if rec.DeadLetteredAt, ok = parseTime(get(deadletter.AttrDeadLetteredAt)); !ok {
		rec.DeadLetteredAt, ok = r.PublishTime, !r.PublishTime.IsZero()
	}
	if !ok {
		rec.DeadLetteredAt = r.At
	}
	if t, ok := parseTime(get(deadletter.AttrPublishTime)); ok {
		rec.PublishTime = t
	} else if t, ok := parseTime(get(deadletter.AttrPubSubTopicPublishTime)); ok {
		rec.PublishTime = t
	}
	return rec
}

// Row encodes r as an archive row (insertAll form): the JSON attributes
// column as raw JSON, the body as text or base64 per BodyEncoding (base64
// whenever the body is not valid UTF-8), empty strings, a zero
// DeliveryAttempts and a zero PublishTime as NULL. DecodeRow(Row().Values)
// gives r back.
func (r Record) Row() warehouse.Row {
	attrs := r.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrJSON, _ := json.Marshal(attrs) // map[string]string always encodes
	body, enc := string(r.Body), EncodingUTF8
	if r.BodyEncoding == EncodingBase64 || !utf8.Valid(r.Body) {
		body, enc = base64.StdEncoding.EncodeToString(r.Body), EncodingBase64
	}
	v := map[string]any{
		"message_id":        r.MessageID,
		"original_topic":    nullable(r.OriginalTopic),
		"subscription":      nullable(r.Subscription),
		"attributes":        json.RawMessage(attrJSON),
		"body":              body,
		"body_encoding":     enc,
		"reason_class":      nullable(r.ReasonClass),
		"reason_message":    nullable(r.ReasonMessage),
		"delivery_attempts": nil,
		"publish_time":      nil,
		"dead_lettered_at":  r.DeadLetteredAt,
		"received_at":       r.ReceivedAt,
	}
	if r.DeliveryAttempts > 0 {
		v["delivery_attempts"] = r.DeliveryAttempts
	}
	if !r.PublishTime.IsZero() {
		v["publish_time"] = r.PublishTime
	}
	return warehouse.Row{InsertID: r.MessageID, Values: v}
}

// DecodeRow converts one archive row to a Record. It accepts the forms
// the archive's sources produce: the insertAll JSON form written by the
// warehouse sinks (TIMESTAMP as text or epoch seconds, INTEGER as number
// or text, the JSON attributes column as a string holding an object, as
// an object or as raw JSON) and the Go values the BigQuery client returns
// (time.Time, int64, string). Unknown columns are ignored. Errors name the
// column.
func DecodeRow(row map[string]any) (Record, error) {
	var e Record
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
		t, ok := timestamp(v)
		if !ok {
			err = fmt.Errorf("column %s: not a timestamp between years 1 and 9999: %v", col, v)
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
		return Record{}, err
	}
	if e.MessageID == "" {
		return Record{}, errors.New("column message_id: missing")
	}
	if e.Attributes, err = decodeAttributes(row["attributes"]); err != nil {
		return Record{}, fmt.Errorf("column attributes: %w", err)
	}
	if e.DeliveryAttempts, err = asInt(row["delivery_attempts"]); err != nil {
		return Record{}, fmt.Errorf("column delivery_attempts: %w", err)
	}
	switch e.BodyEncoding {
	case EncodingBase64:
		if e.Body, err = base64.StdEncoding.DecodeString(body); err != nil {
			return Record{}, fmt.Errorf("column body: base64: %w", err)
		}
	case EncodingUTF8, "":
		e.Body = []byte(body)
	default:
		return Record{}, fmt.Errorf("column body_encoding: unknown encoding %q", e.BodyEncoding)
	}
	if len(e.Body) == 0 {
		e.Body = nil // as NewRecord holds an empty body
	}
	return e, nil
}

// EventID returns the CloudEvent id (ce-id attribute).
func (r Record) EventID() string { return deadletter.Lookup(r.Attributes, "ce-id") }

// Type returns the CloudEvent type (ce-type attribute).
func (r Record) Type() string { return deadletter.Lookup(r.Attributes, "ce-type") }

// Topic returns the topic id the message was first published to: the
// original_topic column, else the dlq-source-topic attribute; "" when
// neither is known (a message Pub/Sub dead-lettered carries only its
// subscription, whose topic the caller must look up).
func (r Record) Topic() string {
	for _, t := range []string{r.OriginalTopic, deadletter.Lookup(r.Attributes, deadletter.AttrSourceTopic)} {
		if t != "" {
			return ResourceID(t)
		}
	}
	return ""
}

// SourceSubscription returns the id of the subscription that gave up on
// the message: the subscription column, else dlq-subscription, else the
// CloudPubSubDeadLetterSourceSubscription attribute.
func (r Record) SourceSubscription() string {
	for _, s := range []string{r.Subscription, deadletter.Lookup(r.Attributes, deadletter.AttrSubscription), deadletter.Lookup(r.Attributes, deadletter.AttrPubSubSubscription)} {
		if s != "" {
			return ResourceID(s)
		}
	}
	return ""
}

// Reason returns the reason class and message: the columns, else the
// reason attributes; a message Pub/Sub dead-lettered after its delivery
// attempts has class delivery_attempts.
func (r Record) Reason() (class, message string) {
	class, message = r.ReasonClass, r.ReasonMessage
	if class == "" {
		class = deadletter.Lookup(r.Attributes, deadletter.AttrReasonClass)
	}
	if message == "" {
		message = deadletter.Lookup(r.Attributes, deadletter.AttrReason)
	}
	count := deadletter.Lookup(r.Attributes, deadletter.AttrPubSubDeliveryCount)
	if class == "" && count != "" {
		class = ReasonDeliveryAttempts
	}
	if message == "" && count != "" {
		message = "maximum delivery attempts reached (" + count + ")"
	}
	return class, message
}

// Attempts returns the delivery attempts: the column, else the
// attributes of Pub/Sub or of Annotate; 0 when unknown.
func (r Record) Attempts() int64 {
	if r.DeliveryAttempts > 0 {
		return r.DeliveryAttempts
	}
	for _, a := range []string{deadletter.AttrPubSubDeliveryCount, deadletter.AttrAttempt} {
		if n, err := strconv.ParseInt(deadletter.Lookup(r.Attributes, a), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// Reference returns the body reference of a dead letter whose body was
// too large to publish (deadletter.AttrBodyOmitted set): ok is false for a dead
// letter that carries its body. err reports a reference document that
// does not decode.
func (r Record) Reference() (ref deadletter.BodyReference, ok bool, err error) {
	if deadletter.Lookup(r.Attributes, deadletter.AttrBodyOmitted) == "" {
		return deadletter.BodyReference{}, false, nil
	}
	ref, err = deadletter.DecodeBodyReference(r.Body)
	return ref, true, err
}

// ResourceID returns the last path element of a resource name
// ("projects/p/topics/t" -> "t"); an id is returned unchanged.
func ResourceID(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// validText is s with every byte that is not part of valid UTF-8 replaced
// by U+FFFD, exactly as encoding/json writes it.
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
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
	return timestamp(s)
}

// timestamp is warehouse.ParseTimestamp limited to the range of a BigQuery
// TIMESTAMP (years 1 to 9999): a value outside it could not be written
// back, and ParseTimestamp does not bound epoch seconds (1e300 overflows).
func timestamp(v any) (time.Time, bool) {
	t, ok := warehouse.ParseTimestamp(v)
	if !ok || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
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
// (insertAll form, BigQuery client), raw JSON (Row) or an object.
func decodeAttributes(v any) (map[string]string, error) {
	out := map[string]string{}
	var obj map[string]any
	switch x := v.(type) {
	case nil:
		return out, nil
	case json.RawMessage:
		return decodeAttributes(string(x))
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
