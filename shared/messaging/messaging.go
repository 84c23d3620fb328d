// Package messaging is the narrow publishing port every other shared package
// depends on, and its Pub/Sub implementation.
//
// Code that emits messages (the outbox relay, dead-lettering, the local
// stack) takes a Publisher, so tests can run it against the real Pub/Sub
// client talking to pstest, or against a recorder.
package messaging

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"cloud.google.com/go/pubsub/v2"
)

// Message is one Pub/Sub message as we publish it.
type Message struct {
	Data        []byte
	Attributes  map[string]string
	OrderingKey string
}

// Clone returns a deep copy of m.
func (m Message) Clone() Message {
	return Message{Data: append([]byte(nil), m.Data...), Attributes: maps.Clone(m.Attributes), OrderingKey: m.OrderingKey}
}

// Publisher publishes one message to a topic (a topic id, not a full
// resource name) and returns the server-assigned message id once the server
// has accepted it. Implementations are safe for concurrent use.
type Publisher interface {
	Publish(ctx context.Context, topic string, m Message) (string, error)
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, topic string, m Message) (string, error)

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, topic string, m Message) (string, error) {
	return f(ctx, topic, m)
}

// PubSub publishes with the Pub/Sub v2 client. It keeps one client-side
// publisher per topic with message ordering enabled. When a publish with an
// ordering key fails, the client pauses that key; PubSub resumes it so the
// caller's next attempt (for example the outbox relay's next pass) can
// publish it again, in order.
type PubSub struct {
	client *pubsub.Client

	mu         sync.Mutex
	publishers map[string]*pubsub.Publisher
}

// NewPubSub returns a Publisher over client. Call Stop to flush and release
// the per-topic publishers.
func NewPubSub(client *pubsub.Client) *PubSub {
	return &PubSub{client: client, publishers: map[string]*pubsub.Publisher{}}
}

// Publish implements Publisher.
func (p *PubSub) Publish(ctx context.Context, topic string, m Message) (string, error) {
	pub := p.publisher(topic)
	id, err := pub.Publish(ctx, &pubsub.Message{
		Data:        m.Data,
		Attributes:  m.Attributes,
		OrderingKey: m.OrderingKey,
	}).Get(ctx)
	if err != nil {
		if m.OrderingKey != "" {
			pub.ResumePublish(m.OrderingKey)
		}
		return "", fmt.Errorf("publish to %s: %w", topic, err)
	}
	return id, nil
}

// Stop flushes and stops every per-topic publisher.
func (p *PubSub) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pub := range p.publishers {
		pub.Stop()
	}
	clear(p.publishers)
}

func (p *PubSub) publisher(topic string) *pubsub.Publisher {
	p.mu.Lock()
	defer p.mu.Unlock()
	pub, ok := p.publishers[topic]
	if !ok {
		pub = p.client.Publisher(topic)
		pub.EnableMessageOrdering = true
		p.publishers[topic] = pub
	}
	return pub
}

// Recorder is an in-memory Publisher for tests that only need to see what
// was published. Fail, when set, is returned instead of publishing.
type Recorder struct {
	mu       sync.Mutex
	Fail     func(topic string, m Message) error
	messages []Published
	n        int
}

// Published is a message a Recorder received.
type Published struct {
	Topic string
	ID    string
	Message
}

// Publish implements Publisher.
func (r *Recorder) Publish(_ context.Context, topic string, m Message) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Fail != nil {
		if err := r.Fail(topic, m); err != nil {
			return "", err
		}
	}
	r.n++
	id := fmt.Sprintf("rec-%d", r.n)
	r.messages = append(r.messages, Published{Topic: topic, ID: id, Message: m.Clone()})
	return id, nil
}

// Messages returns a copy of everything published so far, in order.
func (r *Recorder) Messages() []Published {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Published(nil), r.messages...)
}
