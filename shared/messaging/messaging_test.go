package messaging_test

import (
	"context"
	"errors"
	"testing"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/testing/pubsubtest"
)

func TestPubSubPublishesWithOrderingKey(t *testing.T) {
	f := pubsubtest.New(t)
	f.CreateTopic(t, "order.created")
	p := messaging.NewPubSub(f.Client)
	defer p.Stop()
	ctx := context.Background()
	for _, body := range []string{"a", "b", "c"} {
		if _, err := p.Publish(ctx, "order.created", messaging.Message{Data: []byte(body), OrderingKey: "o-1", Attributes: map[string]string{"ce-id": body}}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := f.Server.Messages()
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3", len(msgs))
	}
	for i, want := range []string{"a", "b", "c"} {
		if string(msgs[i].Data) != want || msgs[i].OrderingKey != "o-1" || msgs[i].Attributes["ce-id"] != want {
			t.Fatalf("message %d = %q key %q attrs %v", i, msgs[i].Data, msgs[i].OrderingKey, msgs[i].Attributes)
		}
	}
}

func TestPubSubResumesKeyAfterFailure(t *testing.T) {
	f := pubsubtest.New(t)
	p := messaging.NewPubSub(f.Client)
	defer p.Stop()
	ctx := context.Background()
	// The topic does not exist yet: the publish fails and the key is paused.
	if _, err := p.Publish(ctx, "late", messaging.Message{Data: []byte("x"), OrderingKey: "k"}); err == nil {
		t.Fatal("publish to a missing topic succeeded")
	}
	f.CreateTopic(t, "late")
	if _, err := p.Publish(ctx, "late", messaging.Message{Data: []byte("x"), OrderingKey: "k"}); err != nil {
		t.Fatalf("publish after the topic exists: %v (ordering key was not resumed)", err)
	}
}

func TestRecorder(t *testing.T) {
	var r messaging.Recorder
	boom := errors.New("boom")
	r.Fail = func(topic string, _ messaging.Message) error {
		if topic == "bad" {
			return boom
		}
		return nil
	}
	if _, err := r.Publish(context.Background(), "bad", messaging.Message{}); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	attrs := map[string]string{"k": "v"}
	if _, err := r.Publish(context.Background(), "good", messaging.Message{Attributes: attrs}); err != nil {
		t.Fatal(err)
	}
	attrs["k"] = "changed"
	got := r.Messages()
	if len(got) != 1 || got[0].Topic != "good" || got[0].Attributes["k"] != "v" {
		t.Fatalf("recorded %+v", got)
	}
}
