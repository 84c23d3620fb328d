// Package deadletter publishes a permanently failed message to its
// consumer's dead-letter topic.
//
// The original body and every original attribute (including the ce-*
// CloudEvent attributes and traceparent) are kept unchanged, so the message
// can be replayed to its original topic as it was. Reason attributes are
// added under the "dlq-" prefix; attributes the original already carries
// under that prefix (a message that was dead-lettered, replayed and failed
// again) are overwritten with the newest reason.
//
// The ordering key is not kept: a dead-letter topic mixes messages of many
// keys and its consumers do not need order, and publishing with a key would
// let one failure pause every later dead letter of that key. The original
// key is recorded in AttrOrderingKey.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/retry"
)

// Reason attributes added to every dead-lettered message.
const (
	AttrReasonClass    = "dlq-reason-class" // "permanent" (or "transient" when attempts ran out in process)
	AttrReason         = "dlq-reason"       // the error message, truncated to MaxAttributeValue bytes
	AttrConsumer       = "dlq-consumer"     // the function that gave up
	AttrSourceTopic    = "dlq-source-topic" // topic the message was published to
	AttrSubscription   = "dlq-subscription" // subscription it was delivered through
	AttrAttempt        = "dlq-delivery-attempt"
	AttrMessageID      = "dlq-message-id" // Pub/Sub message id of the original
	AttrOrderingKey    = "dlq-ordering-key"
	AttrPublishTime    = "dlq-publish-time" // when the original was published, RFC 3339
	AttrDeadLetteredAt = "dlq-time"         // RFC 3339 with nanoseconds, UTC
	// AttrBodyOmitted is set (to BodyOmittedTooLarge) when the body was too
	// large to dead-letter and was replaced by a BodyReference document.
	AttrBodyOmitted = "dlq-body-omitted"
)

// BodyOmittedTooLarge is the value of AttrBodyOmitted.
const BodyOmittedTooLarge = "too-large"

// MaxAttributeValue is the largest attribute value Pub/Sub accepts, in bytes.
const MaxAttributeValue = 1024

// ErrNoTopic is returned when no dead-letter topic is configured.
var ErrNoTopic = errors.New("deadletter: no dead-letter topic configured")

// Reason describes why and where a message failed.
type Reason struct {
	Err          error
	Consumer     string
	SourceTopic  string
	Subscription string
	MessageID    string
	Attempt      int
	PublishTime  time.Time // of the original message; zero when unknown
	Time         time.Time // zero means now
}

// Publisher sends failed messages to one dead-letter topic.
// It is safe for concurrent use.
type Publisher struct {
	// Topic is the dead-letter topic id, e.g. "payment.dlq".
	Topic string
	// Messages publishes; in production a *messaging.PubSub.
	Messages messaging.Publisher
}

// Publish forwards m with reason attributes and returns the new message id.
// When the body plus the attributes would exceed what Pub/Sub accepts
// (MessageSize > MaxMessageBytes), the body is replaced by a BodyReference
// (OmitBody): the dead letter is then archived and shown, but cannot be
// replayed from the archive.
// A failure to publish is transient: the caller must not acknowledge the
// original, so Pub/Sub redelivers it and nothing is lost.
func (p *Publisher) Publish(ctx context.Context, m messaging.Message, r Reason) (string, error) {
	if p == nil || p.Topic == "" || p.Messages == nil {
		return "", retry.Transient(ErrNoTopic)
	}
	out := Annotate(m, r)
	if MessageSize(out) > MaxMessageBytes {
		out = OmitBody(out)
	}
	id, err := p.Messages.Publish(ctx, p.Topic, out)
	if err != nil {
		return "", retry.Transient(fmt.Errorf("dead-letter to %s: %w", p.Topic, err))
	}
	return id, nil
}

// Annotate returns a copy of m, without its ordering key, carrying r's
// reason attributes.
func Annotate(m messaging.Message, r Reason) messaging.Message {
	attrs := maps.Clone(m.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	at := r.Time
	if at.IsZero() {
		at = time.Now()
	}
	msg := "unknown error"
	class := retry.ClassPermanent
	if r.Err != nil {
		msg = r.Err.Error()
		class = retry.Classify(r.Err)
	}
	attrs[AttrReasonClass] = class.String()
	attrs[AttrReason] = AttributeValue(msg)
	attrs[AttrDeadLetteredAt] = at.UTC().Format(time.RFC3339Nano)
	delete(attrs, AttrBodyOmitted) // describes an older dead letter; Publish sets it again if needed
	set := func(k, v string) {
		if v != "" {
			attrs[k] = AttributeValue(v)
		} else {
			delete(attrs, k)
		}
	}
	set(AttrConsumer, r.Consumer)
	set(AttrSourceTopic, r.SourceTopic)
	set(AttrSubscription, r.Subscription)
	set(AttrMessageID, r.MessageID)
	set(AttrOrderingKey, m.OrderingKey)
	if !r.PublishTime.IsZero() {
		attrs[AttrPublishTime] = r.PublishTime.UTC().Format(time.RFC3339Nano)
	} else {
		delete(attrs, AttrPublishTime)
	}
	if r.Attempt > 0 {
		attrs[AttrAttempt] = strconv.Itoa(r.Attempt)
	} else {
		delete(attrs, AttrAttempt)
	}
	return messaging.Message{Data: append([]byte(nil), m.Data...), Attributes: attrs}
}

// AttributeValue makes s safe as an attribute value: one line (control
// characters become spaces and runs of white space collapse) of at most
// MaxAttributeValue bytes of valid UTF-8. A no-wrapper push sends
// attributes as HTTP headers, where a line break is not allowed, so a
// multi-line error message (a wrapped SQL error, a panic) would otherwise
// make the dead letter itself undeliverable.
func AttributeValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return Truncate(strings.Join(strings.Fields(s), " "), MaxAttributeValue)
}

// Truncate shortens s to at most n bytes without splitting a UTF-8
// character, marking the cut with "…" when there is room.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	if cut < 0 {
		cut, n = n, 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if n == 0 {
		return s[:cut]
	}
	return s[:cut] + mark
}
