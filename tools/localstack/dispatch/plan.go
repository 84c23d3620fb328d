package dispatch

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"example.com/platform/shared/manifest"
)

// RetainedSuffix ends the id of the pull subscription kept on a dead-letter
// topic that no function consumes (the dead-letter archive's own), as
// Terraform creates it (docs/infrastructure.md, "Naming").
const RetainedSuffix = "--retained"

// Subscription is one push subscription the dispatcher serves: what
// Terraform would create for a consumer of a topic.
type Subscription struct {
	// ID is the subscription id (manifest.SubscriptionID(Consumer, Topic)).
	ID string
	// Topic is the id of the topic the subscription is attached to.
	Topic string
	// Consumer is the name of the function the messages are pushed to.
	Consumer string
	// URL is the push endpoint. A Subscription whose URL is empty when the
	// dispatcher starts is an error; SetURL changes it while running.
	URL string
	// DeadLetterTopic is the id of the topic messages go to after
	// MaxDeliveryAttempts failed deliveries (manifest.DeadLetterTopic).
	DeadLetterTopic string
	// Ordering enables per-ordering-key delivery order.
	Ordering bool
	// Filter is a Pub/Sub filter on attributes; empty means every message.
	Filter string
	// MaxDeliveryAttempts is the number of deliveries before dead-lettering
	// (the dead_letter_policy); 0 means the Pub/Sub default of 5.
	MaxDeliveryAttempts int
	// MinBackoff and MaxBackoff bound the exponential wait between
	// deliveries (the retry_policy); zero means the Pub/Sub defaults of
	// 10s and 600s.
	MinBackoff, MaxBackoff time.Duration
	// AckDeadline is how long one push may take before it counts as failed
	// (and the lease the dispatcher keeps on the message); 0 means 10s.
	AckDeadline time.Duration
}

// Pub/Sub defaults for unset Subscription fields.
const (
	DefaultMaxDeliveryAttempts = 5
	DefaultMinBackoff          = 10 * time.Second
	DefaultMaxBackoff          = 600 * time.Second
	DefaultAckDeadline         = 10 * time.Second
)

func (s Subscription) withDefaults() Subscription {
	if s.MaxDeliveryAttempts == 0 {
		s.MaxDeliveryAttempts = DefaultMaxDeliveryAttempts
	}
	if s.MinBackoff == 0 {
		s.MinBackoff = DefaultMinBackoff
	}
	if s.MaxBackoff == 0 {
		s.MaxBackoff = DefaultMaxBackoff
	}
	if s.AckDeadline == 0 {
		s.AckDeadline = DefaultAckDeadline
	}
	return s
}

// Sentinel errors of Subscription.Validate and New.
var (
	ErrNoSubscriptionID = errors.New("dispatch: subscription id is empty")
	ErrNoTopic          = errors.New("dispatch: subscription topic is empty")
	ErrNoDeadLetter     = errors.New("dispatch: subscription dead-letter topic is empty")
	ErrNoURL            = errors.New("dispatch: subscription push URL is empty")
	ErrBadBackoff       = errors.New("dispatch: backoff must satisfy 0 <= min <= max")
	ErrBadAttempts      = errors.New("dispatch: max delivery attempts must be at least 1")
	ErrDuplicateID      = errors.New("dispatch: duplicate subscription id")
	ErrNoClient         = errors.New("dispatch: Config.Client is nil")
	ErrBadScale         = errors.New("dispatch: BackoffScale must not be negative")
)

// Validate checks s after defaults are applied.
func (s Subscription) Validate() error {
	s = s.withDefaults()
	var errs []error
	if s.ID == "" {
		errs = append(errs, ErrNoSubscriptionID)
	}
	if s.Topic == "" {
		errs = append(errs, ErrNoTopic)
	}
	if s.DeadLetterTopic == "" {
		errs = append(errs, ErrNoDeadLetter)
	}
	if s.URL == "" {
		errs = append(errs, ErrNoURL)
	}
	if s.MinBackoff < 0 || s.MaxBackoff < s.MinBackoff {
		errs = append(errs, ErrBadBackoff)
	}
	if s.MaxDeliveryAttempts < 1 {
		errs = append(errs, ErrBadAttempts)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("subscription %q: %w", s.ID, err)
	}
	return nil
}

// Plan is every Pub/Sub resource the manifests of a repository describe,
// as Terraform (infra/modules/manifests) creates them.
type Plan struct {
	// Topics are the catalogue's topics and the dead-letter topic of every
	// cloudevent function, sorted.
	Topics []string
	// Subscriptions are the push subscriptions, sorted by id, with empty
	// URLs: the caller fills them in (Plan.WithURLs).
	Subscriptions []Subscription
	// Retained are pull subscriptions ("<topic>--retained") on dead-letter
	// topics that no function consumes. Nothing dispatches them: messages
	// wait there for an operator, as in production.
	Retained []Subscription
}

// PlanRepo derives the Plan from a repository's manifests: per consumer of a
// topic a subscription manifest.SubscriptionID(fn, topic) with the manifest's
// delivery settings and the consumer's dead-letter topic; a function with
// consumes_dead_letters gets one on every other function's dead-letter
// topic.
func PlanRepo(repo *manifest.Repo) (*Plan, error) {
	p := &Plan{}
	topics := map[string]bool{}
	for t := range repo.Topics.Topics {
		topics[t] = true
	}
	var events []*manifest.Manifest
	for _, m := range repo.Functions {
		if m.Kind == manifest.KindCloudEvent {
			events = append(events, m)
			topics[manifest.DeadLetterTopic(m.Name)] = true
		}
	}
	consumed := map[string]bool{}
	for _, m := range events {
		for _, c := range m.Consumes {
			s, err := subscription(m.Name, c.Topic, c.Delivery)
			if err != nil {
				return nil, err
			}
			p.Subscriptions = append(p.Subscriptions, s)
			consumed[c.Topic] = true
		}
		if m.ConsumesDeadLetters != nil {
			for _, other := range events {
				if other.Name == m.Name {
					continue
				}
				s, err := subscription(m.Name, manifest.DeadLetterTopic(other.Name), *m.ConsumesDeadLetters)
				if err != nil {
					return nil, err
				}
				s.Ordering = false
				p.Subscriptions = append(p.Subscriptions, s)
				consumed[s.Topic] = true
			}
		}
	}
	for t := range topics {
		p.Topics = append(p.Topics, t)
	}
	sort.Strings(p.Topics)
	for _, m := range events {
		t := manifest.DeadLetterTopic(m.Name)
		if !consumed[t] {
			p.Retained = append(p.Retained, Subscription{ID: t + RetainedSuffix, Topic: t, AckDeadline: 60 * time.Second})
		}
	}
	sort.Slice(p.Subscriptions, func(i, j int) bool { return p.Subscriptions[i].ID < p.Subscriptions[j].ID })
	return p, nil
}

func subscription(fn, topic string, d manifest.Delivery) (Subscription, error) {
	secs := func(field, v string) (time.Duration, error) {
		if v == "" {
			return 0, nil
		}
		n, err := manifest.Seconds(v)
		if err != nil {
			return 0, fmt.Errorf("function %s, topic %s, %s: %w", fn, topic, field, err)
		}
		return time.Duration(n) * time.Second, nil
	}
	s := Subscription{
		ID:                  manifest.SubscriptionID(fn, topic),
		Topic:               topic,
		Consumer:            fn,
		DeadLetterTopic:     manifest.DeadLetterTopic(fn),
		Ordering:            d.Ordering,
		Filter:              d.Filter,
		MaxDeliveryAttempts: d.MaxDeliveryAttempts,
	}
	var err error
	if s.MinBackoff, err = secs("min_backoff", d.MinBackoff); err != nil {
		return s, err
	}
	if s.MaxBackoff, err = secs("max_backoff", d.MaxBackoff); err != nil {
		return s, err
	}
	if s.AckDeadline, err = secs("ack_deadline", d.AckDeadline); err != nil {
		return s, err
	}
	return s.withDefaults(), nil
}

// WithURLs returns a copy of the plan's subscriptions with URL set to
// url(consumer). Consumers for which url returns "" keep an empty URL.
func (p *Plan) WithURLs(url func(consumer string) string) []Subscription {
	out := make([]Subscription, len(p.Subscriptions))
	for i, s := range p.Subscriptions {
		s.URL = url(s.Consumer)
		out[i] = s
	}
	return out
}

// Consumers returns the names of the functions the plan pushes to, sorted.
func (p *Plan) Consumers() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range p.Subscriptions {
		if !seen[s.Consumer] {
			seen[s.Consumer] = true
			out = append(out, s.Consumer)
		}
	}
	sort.Strings(out)
	return out
}
