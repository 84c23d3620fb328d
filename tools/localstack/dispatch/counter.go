package dispatch

import (
	"strings"
	"sync"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
)

// PublishCounter counts the messages published to each topic of a pstest
// server. It lets the Dispatcher tell "nothing left to pull" from "a message
// arrived since the last pull" without sleeping: see Dispatcher.Quiet.
// It is safe for concurrent use.
type PublishCounter struct {
	mu      sync.Mutex
	counts  map[string]int64         // by topic id
	waiters map[string]chan struct{} // by topic id: closed at its next publish
}

// NewPublishCounter returns an empty counter.
func NewPublishCounter() *PublishCounter {
	return &PublishCounter{counts: map[string]int64{}, waiters: map[string]chan struct{}{}}
}

// Next returns a channel that is closed when the next message is published
// to the topic id (after this call). The Dispatcher waits on it instead of
// only polling, so a message is pushed as soon as it is published: the
// server stores the message under the lock the reactor runs under, so a
// pull started when the channel closes sees it.
func (c *PublishCounter) Next(topic string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.waiters[topic]
	if !ok {
		ch = make(chan struct{})
		c.waiters[topic] = ch
	}
	return ch
}

// ServerOption is the pstest option that makes the server report every
// Publish to the counter: pass it to pstest.NewServer or
// pstest.NewServerWithPort. It never changes how the server answers.
func (c *PublishCounter) ServerOption() pstest.ServerReactorOption {
	return pstest.ServerReactorOption{FuncName: "Publish", Reactor: counterReactor{c}}
}

// Count returns how many messages were published to the topic id.
func (c *PublishCounter) Count(topic string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[topic]
}

type counterReactor struct{ c *PublishCounter }

// React runs under the server's lock, before the messages are stored, so a
// count never lags behind what a pull can see.
func (r counterReactor) React(req interface{}) (bool, interface{}, error) {
	if p, ok := req.(*pubsubpb.PublishRequest); ok {
		id := p.Topic[strings.LastIndex(p.Topic, "/")+1:]
		r.c.mu.Lock()
		r.c.counts[id] += int64(len(p.Messages))
		if ch, ok := r.c.waiters[id]; ok {
			close(ch)
			delete(r.c.waiters, id)
		}
		r.c.mu.Unlock()
	}
	return false, nil, nil
}
