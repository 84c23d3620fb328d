// Package messaging is the narrow publishing port every other shared package
// depends on, and its Pub/Sub implementation.
//
// Code that emits messages (the outbox relay, dead-lettering, the local
// stack) takes a Publisher, so tests can run it against the real Pub/Sub
// client talking to pstest, or against a recorder.
package messaging

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

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

// PublishResult is the outcome of an asynchronous publish: Ready is closed
// once it is known, then Get returns the server-assigned id or the error.
type PublishResult interface {
	Ready() <-chan struct{}
	Get(ctx context.Context) (string, error)
}

// AsyncPublisher publishes without waiting for each acknowledgement, so
// many messages can be in flight at once. Implementations keep per-key
// order: messages with one (topic, ordering key) are published in the
// order PublishAsync was called, and after one of them fails, every later
// one fails too (the key is paused) until ResumePublish(topic, key). Rows
// without an ordering key are independent. Implementations are safe for
// concurrent use.
type AsyncPublisher interface {
	PublishAsync(ctx context.Context, topic string, m Message) PublishResult
	ResumePublish(topic, orderingKey string)
}

// ErrKeyPaused is the error of a message refused by Async's adapter
// because an earlier message of its ordering key failed.
var ErrKeyPaused = errors.New("messaging: ordering key paused after a failed publish")

// Async returns p itself if it is an AsyncPublisher. Otherwise it adapts
// p: the messages of one (topic, ordering key) are published one after the
// other with p.Publish, in call order, and a failure pauses the key
// (ErrKeyPaused) until ResumePublish; keys, and messages without a key,
// proceed in parallel, at most concurrency Publish calls at once (zero
// means no limit).
func Async(p Publisher, concurrency int) AsyncPublisher {
	if a, ok := p.(AsyncPublisher); ok {
		return a
	}
	a := &asyncAdapter{p: p, lanes: map[laneKey]*lane{}}
	if concurrency > 0 {
		a.sem = make(chan struct{}, concurrency)
	}
	return a
}

type laneKey struct{ topic, key string }

type lane struct {
	queue   []*asyncJob
	running bool
	paused  bool
}

type asyncJob struct {
	ctx   context.Context
	topic string
	m     Message
	res   *asyncResult
}

type asyncResult struct {
	done chan struct{}
	id   string
	err  error
}

func (r *asyncResult) set(id string, err error) {
	r.id, r.err = id, err
	close(r.done)
}

func (r *asyncResult) Ready() <-chan struct{} { return r.done }

func (r *asyncResult) Get(ctx context.Context) (string, error) {
	select {
	case <-r.done:
		return r.id, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

type asyncAdapter struct {
	p   Publisher
	sem chan struct{}

	mu    sync.Mutex
	lanes map[laneKey]*lane
}

func (a *asyncAdapter) PublishAsync(ctx context.Context, topic string, m Message) PublishResult {
	j := &asyncJob{ctx: ctx, topic: topic, m: m, res: &asyncResult{done: make(chan struct{})}}
	if m.OrderingKey == "" {
		go func() { j.res.set(a.publish(j)) }()
		return j.res
	}
	k := laneKey{topic, m.OrderingKey}
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.lanes[k]
	if l == nil {
		l = &lane{}
		a.lanes[k] = l
	}
	if l.paused {
		j.res.set("", fmt.Errorf("publish to %s: %w", topic, ErrKeyPaused))
		return j.res
	}
	l.queue = append(l.queue, j)
	if !l.running {
		l.running = true
		go a.run(k, l)
	}
	return j.res
}

func (a *asyncAdapter) run(k laneKey, l *lane) {
	for {
		a.mu.Lock()
		if len(l.queue) == 0 {
			l.running = false
			if !l.paused {
				delete(a.lanes, k)
			}
			a.mu.Unlock()
			return
		}
		j := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		paused := l.paused
		a.mu.Unlock()
		if paused {
			j.res.set("", fmt.Errorf("publish to %s: %w", j.topic, ErrKeyPaused))
			continue
		}
		id, err := a.publish(j)
		if err != nil {
			a.mu.Lock()
			l.paused = true
			a.mu.Unlock()
		}
		j.res.set(id, err)
	}
}

func (a *asyncAdapter) publish(j *asyncJob) (string, error) {
	if a.sem != nil {
		select {
		case a.sem <- struct{}{}:
			defer func() { <-a.sem }()
		case <-j.ctx.Done():
			return "", j.ctx.Err()
		}
	}
	return a.p.Publish(j.ctx, j.topic, j.m)
}

func (a *asyncAdapter) ResumePublish(topic, orderingKey string) {
	k := laneKey{topic, orderingKey}
	a.mu.Lock()
	defer a.mu.Unlock()
	if l := a.lanes[k]; l != nil {
		l.paused = false
		if !l.running {
			delete(a.lanes, k)
		}
	}
}

// PublishDelay is how long the client's per-topic publisher waits for more
// messages before it sends a bundle (PublishSettings.DelayThreshold; the
// client's default is 10ms). docs/benchmarks.md measures it.
const PublishDelay = time.Millisecond

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

// PublishAsync implements AsyncPublisher: it hands m to the client's
// per-topic publisher (bundling, ordering, flow control) and returns at
// once. Messages of one ordering key are sent in the order PublishAsync was
// called; after one of them fails the client pauses the key, fails every
// later message of it and keeps failing new ones until ResumePublish.
func (p *PubSub) PublishAsync(ctx context.Context, topic string, m Message) PublishResult {
	res := p.publisher(topic).Publish(ctx, &pubsub.Message{
		Data:        m.Data,
		Attributes:  m.Attributes,
		OrderingKey: m.OrderingKey,
	})
	return topicResult{topic: topic, res: res}
}

// ResumePublish implements AsyncPublisher.
func (p *PubSub) ResumePublish(topic, orderingKey string) {
	if orderingKey != "" {
		p.publisher(topic).ResumePublish(orderingKey)
	}
}

type topicResult struct {
	topic string
	res   *pubsub.PublishResult
}

func (r topicResult) Ready() <-chan struct{} { return r.res.Ready() }

func (r topicResult) Get(ctx context.Context) (string, error) {
	id, err := r.res.Get(ctx)
	if err != nil {
		return "", fmt.Errorf("publish to %s: %w", r.topic, err)
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
		// A publish after commit is on the path of every event: the client's
		// default bundling delay (10ms) added 10ms per hop. Bundles still
		// fill by count when many messages are queued (the relay's drain).
		pub.PublishSettings.DelayThreshold = PublishDelay
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
