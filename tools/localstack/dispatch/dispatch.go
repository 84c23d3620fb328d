// Package dispatch is the push delivery of the local stack: it does for a
// pstest server what a Pub/Sub push subscription does in production.
//
// pstest has no push delivery, ignores retry backoff and re-forwards
// dead-lettered messages forever, so the Dispatcher pulls from plain pull
// subscriptions and implements push itself, faithfully:
//
//   - every message is POSTed to the consumer's URL exactly as a no-wrapper
//     push subscription with write_metadata sends it (events.NewPushRequest:
//     the data as the body, attributes as headers, x-goog-pubsub-* metadata
//     including the delivery attempt);
//   - a response of 102, 200, 201, 202 or 204 acknowledges the message;
//     any other status, a connection error or no answer within the ack
//     deadline is a failed delivery;
//   - after failed delivery n the message is redelivered after
//     retry.Exponential(n, min_backoff, max_backoff) (times
//     Config.BackoffScale), while the dispatcher keeps extending its ack
//     deadline so the server does not hand it out again;
//   - with ordering enabled the server hands out one message per ordering
//     key at a time, so a key's later messages wait behind a failing one
//     while other keys flow;
//   - after max_delivery_attempts failed deliveries the message is published
//     to the consumer's dead-letter topic with its original body, attributes
//     and ordering key plus the CloudPubSubDeadLetterSource* attributes
//     (the deadletter.AttrPubSub* constants), and the original is acknowledged.
//
// Optionally every message is delivered twice (Config.Duplicate), as when an
// acknowledgement is lost, to show that handlers are idempotent, and a
// fault hook (Config.Fault, used by the chaos run) may fail, poison or
// duplicate (also concurrently) any delivery attempt.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/events"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/retry"
)

// Defaults for zero Config fields.
const (
	DefaultPollInterval   = 20 * time.Millisecond
	DefaultMaxOutstanding = 64
)

// Config configures a Dispatcher. The zero value of every field but Client
// is a sane default.
type Config struct {
	// Client is a v2 client of the Pub/Sub server (pstest); its project is
	// the project of every topic and subscription. Required.
	Client *pubsub.Client
	// Counter, when set, is the PublishCounter installed on the server. It
	// makes Quiet exact; without it Quiet only knows what was pulled.
	Counter *PublishCounter
	// BackoffScale multiplies every backoff wait; 0 means 1 (the manifest's
	// real values). Tests and demos use e.g. 0.01.
	BackoffScale float64
	// Duplicate delivers every message a second time after a successful
	// push (as when an ack is lost); SetDuplicate changes it while running.
	Duplicate bool
	// HTTPClient sends the pushes; nil means a client without an overall
	// timeout (each push is bounded by its subscription's ack deadline).
	HTTPClient *http.Client
	// PollInterval is the wait between pulls of an empty subscription.
	PollInterval time.Duration
	// MaxOutstanding bounds the messages of one subscription being
	// delivered or waiting for redelivery at a time.
	MaxOutstanding int
	// Logger receives delivery failures and dead-lettering; nil discards.
	Logger *slog.Logger
	// Observer, when set, is called synchronously after every push and
	// every dead-lettering, from many goroutines at once.
	Observer func(Event)
	// Fault, when set, is asked before every delivery attempt what to do
	// with it (fault injection for the chaos run, tools/localstack/chaos):
	// fail it as a 503, poison its body, or push it twice. Called from many
	// goroutines at once.
	Fault func(Push) Fault
}

// Outcome is what the dispatcher did after a push.
type Outcome string

// Outcomes reported to Config.Observer.
const (
	OutcomeAcked        Outcome = "acked"         // 2xx: acknowledged
	OutcomeDuplicate    Outcome = "duplicate"     // 2xx, delivered again (Duplicate mode)
	OutcomeRetry        Outcome = "retry"         // failed; redelivered after Backoff
	OutcomeDeadLettered Outcome = "dead-lettered" // failed the last attempt; forwarded and acknowledged
	OutcomeAbandoned    Outcome = "abandoned"     // the dispatcher stopped; the message was nacked
)

// Event describes one push.
type Event struct {
	Subscription string // subscription id
	Consumer     string
	MessageID    string
	OrderingKey  string
	Attempt      int // 1-based delivery attempt
	Status       int // HTTP status; 0 when no response
	Err          error
	Outcome      Outcome
	Backoff      time.Duration // the (scaled) wait before the next attempt, for OutcomeRetry
	Time         time.Time
}

// Stats is a snapshot of one subscription's counters.
type Stats struct {
	Subscription string
	Topic        string
	Consumer     string
	// InFlight counts messages pulled and neither acknowledged nor
	// dead-lettered: being pushed or waiting for redelivery.
	InFlight int64
	// Pulled counts distinct messages pulled; Pushes counts POSTs.
	Pulled, Pushes int64
	// Acked counts messages acknowledged after a 2xx; DeadLettered those
	// acknowledged after forwarding to the dead-letter topic.
	Acked, DeadLettered int64
	// Failures counts failed pushes.
	Failures int64
	// Published counts messages published to the topic (-1 without a
	// Counter). Unacked is Published-Acked-DeadLettered (-1 without a
	// Counter); with a Filter it also counts messages the filter dropped.
	Published, Unacked int64
	// Idle reports that the last pull found nothing, nothing was in flight
	// and nothing was published to the topic since.
	Idle bool
}

type subState struct {
	Subscription
	name string

	inFlight                              atomic.Int64
	idleAt                                atomic.Int64 // publish count at the last idle pull, -1 when not idle
	pulled, pushes, acked, dead, failures atomic.Int64
}

// Dispatcher delivers the messages of a set of subscriptions. Its methods
// are safe for concurrent use; Run is called once.
type Dispatcher struct {
	cfg       Config
	project   string
	subs      []*subState
	log       *slog.Logger
	http      *http.Client
	duplicate atomic.Bool

	mu   sync.RWMutex
	urls map[string]string // by consumer

	running atomic.Bool
}

// New validates cfg and subs and returns a Dispatcher that is not yet
// running. Subscriptions must already exist on the server (Provision).
func New(cfg Config, subs []Subscription) (*Dispatcher, error) {
	if cfg.Client == nil {
		return nil, ErrNoClient
	}
	if cfg.BackoffScale < 0 {
		return nil, ErrBadScale
	}
	if cfg.BackoffScale == 0 {
		cfg.BackoffScale = 1
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.MaxOutstanding <= 0 {
		cfg.MaxOutstanding = DefaultMaxOutstanding
	}
	d := &Dispatcher{cfg: cfg, project: cfg.Client.Project(), log: cfg.Logger, http: cfg.HTTPClient, urls: map[string]string{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.http == nil {
		d.http = &http.Client{}
	}
	d.duplicate.Store(cfg.Duplicate)
	seen := map[string]bool{}
	var errs []error
	for _, s := range subs {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[s.ID] {
			errs = append(errs, fmt.Errorf("subscription %q: %w", s.ID, ErrDuplicateID))
			continue
		}
		seen[s.ID] = true
		st := &subState{Subscription: s.withDefaults(), name: SubscriptionName(d.project, s.ID)}
		st.idleAt.Store(-1)
		d.subs = append(d.subs, st)
		if _, ok := d.urls[s.Consumer]; !ok {
			d.urls[s.Consumer] = s.URL
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// SetURL points every subscription of consumer at url from the next push on.
func (d *Dispatcher) SetURL(consumer, url string) {
	d.mu.Lock()
	d.urls[consumer] = url
	d.mu.Unlock()
}

// SetDuplicate switches duplicate delivery on or off for messages pulled
// from now on.
func (d *Dispatcher) SetDuplicate(on bool) { d.duplicate.Store(on) }

func (d *Dispatcher) url(consumer string) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.urls[consumer]
}

// Run delivers until ctx is done, then stops pulling, nacks every message
// it still holds (so the server hands it out again to the next dispatcher),
// waits for its goroutines and returns nil. It returns an error at once if
// called twice.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("dispatch: Run called twice")
	}
	var wg sync.WaitGroup
	for _, s := range d.subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.pullLoop(ctx, s)
		}()
	}
	wg.Wait()
	return nil
}

func (d *Dispatcher) pullLoop(ctx context.Context, s *subState) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, d.cfg.MaxOutstanding)
	settled := make(chan struct{}, 1) // a delivery of this subscription ended
	for {
		// Take one slot (waiting for it), then as many more as are free.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	more:
		for n < d.cfg.MaxOutstanding {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		var before int64
		var published <-chan struct{} // closed at the next publish to the topic
		if d.cfg.Counter != nil {
			published = d.cfg.Counter.Next(s.Topic)
			before = d.cfg.Counter.Count(s.Topic)
		}
		resp, err := d.cfg.Client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{
			Subscription:      s.name,
			MaxMessages:       int32(n),
			ReturnImmediately: true, //nolint:staticcheck // pstest honours it; we poll ourselves
		})
		var msgs []*pubsubpb.ReceivedMessage
		if err == nil {
			msgs = resp.ReceivedMessages
		} else if ctx.Err() == nil {
			d.log.Warn("pull failed", "subscription", s.ID, "err", err)
		}
		for i := len(msgs); i < n; i++ {
			<-slots
		}
		if err == nil && len(msgs) == 0 && s.inFlight.Load() == 0 {
			s.idleAt.Store(before)
		} else {
			s.idleAt.Store(-1)
		}
		for _, m := range msgs {
			s.inFlight.Add(1)
			s.pulled.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer kick(settled)
				defer func() { <-slots }()
				defer s.inFlight.Add(-1)
				d.deliver(ctx, s, m)
			}()
		}
		if len(msgs) == 0 {
			// Pull again after PollInterval, or at once when a message is
			// published to the topic or one of ours is settled (the next
			// message of its ordering key may be ready).
			select {
			case <-time.After(d.cfg.PollInterval):
			case <-published:
			case <-settled:
			case <-ctx.Done():
				return
			}
		}
	}
}

// kick signals ch without blocking (ch has a buffer of one).
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// deliver pushes one message until it is acknowledged or dead-lettered, or
// ctx ends (then it is nacked).
func (d *Dispatcher) deliver(ctx context.Context, s *subState, rm *pubsubpb.ReceivedMessage) {
	stopLease := d.keepLease(ctx, s, rm.AckId)
	defer stopLease()
	pm := rm.Message
	msg := messaging.Message{Data: pm.Data, Attributes: pm.Attributes, OrderingKey: pm.OrderingKey}
	publishTime := pm.PublishTime.AsTime()
	dup := d.duplicate.Load()
	duplicated := dup
	ev := Event{Subscription: s.ID, Consumer: s.Consumer, MessageID: pm.MessageId, OrderingKey: pm.OrderingKey}
	for attempt := 1; ; attempt++ {
		del := events.Delivery{
			Subscription: s.name,
			MessageID:    pm.MessageId,
			PublishTime:  publishTime,
			Attempt:      attempt,
		}
		var fault Fault
		if d.cfg.Fault != nil {
			fault = d.cfg.Fault(Push{Subscription: s.ID, Topic: s.Topic, Consumer: s.Consumer, MessageID: pm.MessageId,
				OrderingKey: pm.OrderingKey, Attributes: pm.Attributes, Attempt: attempt})
		}
		m := msg
		if fault.Poison {
			m.Data = PoisonBody
		}
		var status int
		var err error
		switch {
		case fault.Fail:
			status, err = 503, ErrInjected
		case fault.Duplicate && fault.Concurrent:
			var st2 int
			var err2 error
			status, err, st2, err2 = pushConcurrently(func() (int, error) { return d.push(ctx, s, m, del) })
			d.observe(ev, attempt, st2, err2, OutcomeDuplicate, 0)
		default:
			status, err = d.push(ctx, s, m, del)
			if fault.Duplicate && !duplicated && err == nil && Success(status) {
				dup, duplicated = true, true // once per message
			}
		}
		if ctx.Err() != nil {
			d.nack(s, rm.AckId)
			d.observe(ev, attempt, status, err, OutcomeAbandoned, 0)
			return
		}
		if err == nil && Success(status) {
			if dup {
				dup = false
				d.observe(ev, attempt, status, nil, OutcomeDuplicate, 0)
				continue
			}
			if err := d.ack(s, rm.AckId); err != nil {
				d.log.Warn("ack failed; the server will redeliver", "subscription", s.ID, "message_id", pm.MessageId, "err", err)
			}
			s.acked.Add(1)
			d.observe(ev, attempt, status, nil, OutcomeAcked, 0)
			return
		}
		s.failures.Add(1)
		if err == nil {
			err = fmt.Errorf("push endpoint returned HTTP %d", status)
		}
		if attempt >= s.MaxDeliveryAttempts {
			d.deadLetter(ctx, s, rm, attempt, err)
			d.observe(ev, attempt, status, err, OutcomeDeadLettered, 0)
			return
		}
		wait := d.Backoff(s.Subscription, attempt)
		d.log.Warn("push failed; redelivering after backoff", "subscription", s.ID, "message_id", pm.MessageId,
			"attempt", attempt, "max_attempts", s.MaxDeliveryAttempts, "backoff", wait, "err", err)
		d.observe(ev, attempt, status, err, OutcomeRetry, wait)
		if retry.Sleep(ctx, wait) != nil {
			d.nack(s, rm.AckId)
			d.observe(ev, attempt, status, err, OutcomeAbandoned, 0)
			return
		}
	}
}

// Backoff is the wait after failed delivery attempt n of s: retry.Exponential
// between s's min and max backoff, times Config.BackoffScale.
func (d *Dispatcher) Backoff(s Subscription, attempt int) time.Duration {
	s = s.withDefaults()
	return time.Duration(float64(retry.Exponential(attempt, s.MinBackoff, s.MaxBackoff)) * d.cfg.BackoffScale)
}

// Success reports whether a push response status acknowledges the message.
func Success(status int) bool {
	switch status {
	case 102, 200, 201, 202, 204:
		return true
	}
	return false
}

func (d *Dispatcher) push(ctx context.Context, s *subState, m messaging.Message, del events.Delivery) (int, error) {
	s.pushes.Add(1)
	url := d.url(s.Consumer)
	if url == "" {
		return 0, fmt.Errorf("no push endpoint for %s", s.Consumer)
	}
	pctx, cancel := context.WithTimeout(ctx, s.AckDeadline)
	defer cancel()
	req, err := events.NewPushRequest(pctx, url, m, del)
	if err != nil {
		return 0, err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("push to %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if !Success(resp.StatusCode) {
		return resp.StatusCode, fmt.Errorf("push endpoint returned HTTP %d: %s", resp.StatusCode, deadletter.Truncate(string(body), 200))
	}
	return resp.StatusCode, nil
}

// keepLease extends the message's ack deadline until the returned func is
// called, so the server does not redeliver it while it is pushed or waits
// for its backoff.
func (d *Dispatcher) keepLease(ctx context.Context, s *subState, ackID string) func() {
	deadline := s.AckDeadline
	if deadline < 10*time.Second {
		deadline = 10 * time.Second
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(deadline / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				err := d.cfg.Client.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{
					Subscription: s.name, AckIds: []string{ackID}, AckDeadlineSeconds: int32(deadline / time.Second),
				})
				if err != nil && ctx.Err() == nil {
					d.log.Warn("extend ack deadline failed", "subscription", s.ID, "err", err)
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func (d *Dispatcher) ack(s *subState, ackID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.cfg.Client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: s.name, AckIds: []string{ackID}})
}

func (d *Dispatcher) nack(s *subState, ackID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.cfg.Client.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{
		Subscription: s.name, AckIds: []string{ackID}, AckDeadlineSeconds: 0,
	})
}

// deadLetter forwards rm to s's dead-letter topic and acknowledges it. A
// failed publish is retried with the subscription's backoff until it works
// or ctx ends (then the message is nacked, never lost).
func (d *Dispatcher) deadLetter(ctx context.Context, s *subState, rm *pubsubpb.ReceivedMessage, attempts int, cause error) {
	pm := rm.Message
	attrs := make(map[string]string, len(pm.Attributes)+5)
	for k, v := range pm.Attributes {
		attrs[k] = v
	}
	attrs[deadletter.AttrPubSubDeliveryCount] = strconv.Itoa(attempts)
	attrs[deadletter.AttrPubSubSubscription] = s.ID
	attrs[deadletter.AttrPubSubSubscriptionProject] = d.project
	attrs[deadletter.AttrPubSubTopicPublishTime] = pm.PublishTime.AsTime().UTC().Format(deadletter.PubSubPublishTimeLayout)
	attrs[deadletter.AttrPubSubDeliveryError] = deadletter.AttributeValue(cause.Error())
	out := &pubsubpb.PubsubMessage{Data: pm.Data, Attributes: attrs, OrderingKey: pm.OrderingKey}
	for try := 1; ; try++ {
		_, err := d.cfg.Client.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{
			Topic: TopicName(d.project, s.DeadLetterTopic), Messages: []*pubsubpb.PubsubMessage{out},
		})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			d.nack(s, rm.AckId)
			return
		}
		wait := d.Backoff(s.Subscription, try)
		d.log.Error("dead-letter publish failed; retrying", "subscription", s.ID, "topic", s.DeadLetterTopic, "err", err, "backoff", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			d.nack(s, rm.AckId)
			return
		}
	}
	if err := d.ack(s, rm.AckId); err != nil {
		d.log.Warn("ack after dead-lettering failed; the server will redeliver", "subscription", s.ID, "err", err)
	}
	s.dead.Add(1)
	d.log.Error("message dead-lettered", "subscription", s.ID, "message_id", pm.MessageId,
		"topic", s.DeadLetterTopic, "attempts", attempts, "err", cause)
}

func (d *Dispatcher) observe(ev Event, attempt, status int, err error, o Outcome, backoff time.Duration) {
	if d.cfg.Observer == nil {
		return
	}
	ev.Attempt, ev.Status, ev.Err, ev.Outcome, ev.Backoff, ev.Time = attempt, status, err, o, backoff, time.Now()
	d.cfg.Observer(ev)
}

// Stats returns a snapshot of every subscription's counters, sorted by id.
func (d *Dispatcher) Stats() []Stats {
	out := make([]Stats, 0, len(d.subs))
	for _, s := range d.subs {
		st := Stats{
			Subscription: s.ID, Topic: s.Topic, Consumer: s.Consumer,
			InFlight: s.inFlight.Load(), Pulled: s.pulled.Load(), Pushes: s.pushes.Load(),
			Acked: s.acked.Load(), DeadLettered: s.dead.Load(), Failures: s.failures.Load(),
			Published: -1, Unacked: -1,
		}
		idle := s.idleAt.Load()
		if d.cfg.Counter != nil {
			st.Published = d.cfg.Counter.Count(s.Topic)
			st.Unacked = st.Published - st.Acked - st.DeadLettered
			st.Idle = st.InFlight == 0 && idle >= 0 && idle == st.Published
		} else {
			st.Idle = st.InFlight == 0 && idle >= 0
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subscription < out[j].Subscription })
	return out
}

// Quiet reports whether every subscription is idle: nothing in flight, the
// last pull found nothing, and (with a Counter) nothing was published to its
// topic since that pull. Messages still to be published by the functions
// (an outbox not yet relayed) are outside its view.
func (d *Dispatcher) Quiet() bool {
	for _, st := range d.Stats() {
		if !st.Idle {
			return false
		}
	}
	return true
}

// WaitQuiet polls Quiet every PollInterval until it has held for two
// consecutive polls, or ctx ends (then it returns ctx's error with the
// subscriptions still busy).
func (d *Dispatcher) WaitQuiet(ctx context.Context) error {
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	streak := 0
	for {
		if d.Quiet() {
			streak++
			if streak >= 2 {
				return nil
			}
		} else {
			streak = 0
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			var busy []string
			for _, st := range d.Stats() {
				if !st.Idle {
					busy = append(busy, fmt.Sprintf("%s(in_flight=%d unacked=%d)", st.Subscription, st.InFlight, st.Unacked))
				}
			}
			return fmt.Errorf("wait for quiet: %w; busy: %v", ctx.Err(), busy)
		}
	}
}
