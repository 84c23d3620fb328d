package pubsubtest_test

import (
	"context"
	"testing"

	"cloud.google.com/go/pubsub/v2"

	"example.com/platform/shared/testing/pubsubtest"
)

func TestPublishThroughRealClient(t *testing.T) {
	f := pubsubtest.New(t)
	f.CreateTopic(t, "t1")
	p := f.Client.Publisher("t1")
	defer p.Stop()
	id, err := p.Publish(context.Background(), &pubsub.Message{Data: []byte("hi"), Attributes: map[string]string{"a": "b"}}).Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := f.Server.Message(id)
	if m == nil || string(m.Data) != "hi" || m.Attributes["a"] != "b" {
		t.Fatalf("stored message = %+v", m)
	}
}
