package deadletter_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/pubsubtest"
)

// bigOriginal is a message that Pub/Sub accepted (its size is just under
// the publish limit) but that the reason attributes push over it.
func bigOriginal(t *testing.T) messaging.Message {
	t.Helper()
	m := original()
	m.Data = nil
	n := deadletter.MaxPublishRequestBytes - 100 - deadletter.MessageSize(m)
	body := bytes.Repeat([]byte("x"), n)
	copy(body, `{"order_id":"o-1","blob":"`)
	m.Data = body
	if s := deadletter.MessageSize(m); s > deadletter.MaxPublishRequestBytes-64 || s < deadletter.MaxMessageBytes {
		t.Fatalf("original size %d: not near the limit", s)
	}
	return m
}

// An oversized dead letter is published, with the real client against
// pstest, with its body replaced by a reference; before, the publish
// failed and the function answered 500 until the subscription gave up.
func TestOversizedDeadLetterCarriesReference(t *testing.T) {
	f := pubsubtest.New(t)
	f.CreateTopic(t, "payment.dlq")
	pub := messaging.NewPubSub(f.Client)
	defer pub.Stop()
	p := &deadletter.Publisher{Topic: "payment.dlq", Messages: pub}
	m := bigOriginal(t)
	reason := deadletter.Reason{
		Err: retry.Permanentf("decode order: too big"), Consumer: "payment", SourceTopic: "order.created",
		Subscription: "projects/test-project/subscriptions/payment--order.created", MessageID: "m-1", Attempt: 1,
	}
	if annotated := deadletter.Annotate(m, reason); deadletter.MessageSize(annotated) <= deadletter.MaxPublishRequestBytes {
		t.Fatalf("annotated size %d fits; the test needs one that does not", deadletter.MessageSize(annotated))
	}

	id, err := p.Publish(context.Background(), m, reason)
	if err != nil {
		t.Fatalf("publish oversized dead letter: %v", err)
	}
	got := f.Server.Message(id)
	if got.Attributes[deadletter.AttrBodyOmitted] != deadletter.BodyOmittedTooLarge {
		t.Fatalf("attribute %s = %q", deadletter.AttrBodyOmitted, got.Attributes[deadletter.AttrBodyOmitted])
	}
	for k, v := range m.Attributes {
		if got.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got.Attributes[k], v)
		}
	}
	if got.Attributes[deadletter.AttrConsumer] != "payment" || got.Attributes[deadletter.AttrReason] != "decode order: too big" {
		t.Errorf("reason attributes lost: %v", got.Attributes)
	}
	if len(got.Data) > 4096 {
		t.Fatalf("body %d bytes, want a small reference", len(got.Data))
	}
	ref, err := deadletter.DecodeBodyReference(got.Data)
	if err != nil {
		t.Fatalf("reference %q: %v", got.Data, err)
	}
	sum := sha256.Sum256(m.Data)
	if ref.SHA256 != hex.EncodeToString(sum[:]) || ref.Size != len(m.Data) || !bytes.Equal(ref.Head, m.Data[:deadletter.BodyReferenceHeadBytes]) {
		t.Errorf("reference %+v does not describe the body", ref)
	}
	if err := ref.Err(); !errors.Is(err, deadletter.ErrBodyOmitted) || !strings.Contains(err.Error(), ref.SHA256) {
		t.Errorf("Err() = %v", err)
	}
}

// A message that fits keeps its body, however large.
func TestLargeDeadLetterThatFitsKeepsBody(t *testing.T) {
	var r messaging.Recorder
	p := &deadletter.Publisher{Topic: "x.dlq", Messages: &r}
	m := original()
	m.Data = bytes.Repeat([]byte("y"), deadletter.MaxMessageBytes-4096)
	if _, err := p.Publish(context.Background(), m, deadletter.Reason{Err: errors.New("bad")}); err != nil {
		t.Fatal(err)
	}
	got := r.Messages()[0]
	if !bytes.Equal(got.Data, m.Data) || got.Attributes[deadletter.AttrBodyOmitted] != "" {
		t.Fatalf("body replaced (%d bytes, attribute %q)", len(got.Data), got.Attributes[deadletter.AttrBodyOmitted])
	}
}

// A stale body-omitted attribute (from an earlier dead letter) is not
// carried onto a dead letter that has its body.
func TestAnnotateDropsStaleBodyOmitted(t *testing.T) {
	m := original()
	m.Attributes[deadletter.AttrBodyOmitted] = deadletter.BodyOmittedTooLarge
	if v, ok := deadletter.Annotate(m, deadletter.Reason{}).Attributes[deadletter.AttrBodyOmitted]; ok {
		t.Fatalf("stale %s = %q kept", deadletter.AttrBodyOmitted, v)
	}
}

func TestDecodeBodyReferenceRejectsOtherDocuments(t *testing.T) {
	good := deadletter.NewBodyReference([]byte("hello")).Encode()
	if _, err := deadletter.DecodeBodyReference(good); err != nil {
		t.Fatalf("own encoding rejected: %v", err)
	}
	for name, doc := range map[string]string{
		"event":        `{"order_id":"o-1"}`,
		"no omitted":   `{"sha256":"` + strings.Repeat("a", 64) + `","size":1}`,
		"short hash":   `{"body_omitted":"too-large","sha256":"abc","size":1}`,
		"negative":     `{"body_omitted":"too-large","sha256":"` + strings.Repeat("a", 64) + `","size":-1}`,
		"trailing":     string(good) + `{}`,
		"not json":     `xx`,
		"unknown head": `{"body_omitted":"too-large","sha256":"` + strings.Repeat("a", 64) + `","size":1,"head":"!!"}`,
	} {
		if _, err := deadletter.DecodeBodyReference([]byte(doc)); err == nil || !strings.Contains(err.Error(), "body reference") {
			t.Errorf("%s: err = %v, want an error naming the body reference", name, err)
		}
	}
}
