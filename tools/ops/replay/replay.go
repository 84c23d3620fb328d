// Package replay republishes archived dead letters to their original topics.
//
// Each message keeps its original body and every original attribute,
// ce-* CloudEvent attributes included, so the CloudEvent id is unchanged
// and consumers that already processed the event skip it (idempotency
// holds; every subscription of the original topic receives the replay,
// not only the one that gave up). The reason attributes of package
// deadletter (dlq-*) and of Pub/Sub's own dead-lettering
// (CloudPubSubDeadLetterSource*) are dropped; replay attributes are added
// (AttrReplayID, AttrReplayedAt, AttrReplayedBy, AttrReplayCount). The
// original ordering key is restored from dlq-ordering-key when the
// dead-letter publisher recorded it.
//
// A dead letter whose body was too large to dead-letter (the archive holds
// a deadletter.BodyReference instead, attribute dlq-body-omitted) is never
// replayed, not even when forced: it fails with an error wrapping
// deadletter.ErrBodyOmitted.
//
// Every run and every message is recorded in PostgreSQL (Audit) before and
// after publishing; a dead letter with an earlier replay is refused unless
// forced. A dry run reads the archive and the audit tables, publishes
// nothing and records nothing.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"example.com/platform/shared/deadletter"
	dlarchive "example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/retry"
	"example.com/platform/tools/ops/dlq"
)

// Replay attributes added to every republished message.
const (
	AttrReplayID    = "replay-id"    // the run's id (dlq_replays.replay_id)
	AttrReplayedAt  = "replayed-at"  // RFC 3339, UTC
	AttrReplayedBy  = "replayed-by"  // who ran the replay
	AttrReplayCount = "replay-count" // 1 for the first replay of the event, then 2, ...
)

// Stamp is what a replay adds to a message.
type Stamp struct {
	ReplayID string
	At       time.Time
	By       string
	Count    int
}

// Message returns the message that replays e: e's body and attributes
// without the dlq-* and CloudPubSubDeadLetterSource* reason attributes and
// earlier replay-* attributes, plus s's replay attributes, with the
// original ordering key when e recorded one.
func Message(e dlq.Entry, s Stamp) messaging.Message {
	attrs := maps.Clone(e.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	key := attrs[deadletter.AttrOrderingKey]
	for k := range attrs {
		if strings.HasPrefix(k, deadletter.ReasonAttrPrefix) || strings.HasPrefix(k, deadletter.PubSubAttrPrefix) || strings.HasPrefix(k, "replay-") || k == AttrReplayedAt || k == AttrReplayedBy {
			delete(attrs, k)
		}
	}
	attrs[AttrReplayID] = s.ReplayID
	attrs[AttrReplayedAt] = s.At.UTC().Format(time.RFC3339Nano)
	attrs[AttrReplayedBy] = s.By
	attrs[AttrReplayCount] = strconv.Itoa(s.Count)
	return messaging.Message{Data: append([]byte(nil), e.Body...), Attributes: attrs, OrderingKey: key}
}

// previousCount is the replay-count the entry's message already carried
// (it was replayed before, failed again and was dead-lettered anew).
func previousCount(e dlq.Entry) int {
	n, _ := strconv.Atoi(e.Attributes[AttrReplayCount])
	return n
}

// Clock is the time source of a run: progress timing and the rate
// limiter's waits. Tests inject a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends (retry.Sleep).
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error { return retry.Sleep(ctx, d) }

// Limiter paces publishes.
type Limiter interface {
	// Wait blocks until the next publish may start, or ctx ends.
	Wait(ctx context.Context) error
}

// NewLimiter returns a token bucket of perSecond tokens per second and a
// burst of one (publishes evenly spaced), timed by clock. perSecond <= 0
// means no limit (nil).
func NewLimiter(perSecond float64, clock Clock) Limiter {
	if perSecond <= 0 {
		return nil
	}
	return &bucket{lim: rate.NewLimiter(rate.Limit(perSecond), 1), clock: clock}
}

type bucket struct {
	lim   *rate.Limiter
	clock Clock
}

func (b *bucket) Wait(ctx context.Context) error {
	r := b.lim.ReserveN(b.clock.Now(), 1)
	if !r.OK() {
		return errors.New("rate limiter: burst exceeded")
	}
	if d := r.DelayFrom(b.clock.Now()); d > 0 {
		if err := b.clock.Sleep(ctx, d); err != nil {
			r.CancelAt(b.clock.Now())
			return err
		}
	}
	return nil
}

// ParseRate parses a rate: "N/s", "N/m", "N/h" or a bare N (per second).
// "0" and "" mean unlimited.
func ParseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid rate %q: want N/s, N/m or N/h with N >= 0", s)
	}
	switch unit {
	case "", "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	default:
		return 0, fmt.Errorf("invalid rate %q: unit must be s, m or h", s)
	}
}

// TopicResolver finds the topic of a subscription, for dead letters that
// Pub/Sub forwarded (they name only their subscription).
type TopicResolver interface {
	SubscriptionTopic(ctx context.Context, subscription string) (string, error)
}

// PubSubAdmin resolves and checks topics with the Pub/Sub admin API. It
// honours PUBSUB_EMULATOR_HOST through the client.
type PubSubAdmin struct {
	Client *pubsub.Client
	// Project is the project of subscription and topic ids.
	Project string
}

// SubscriptionTopic returns the topic id of subscription (an id or a
// full name).
func (p *PubSubAdmin) SubscriptionTopic(ctx context.Context, subscription string) (string, error) {
	name := subscription
	if !strings.Contains(name, "/") {
		name = "projects/" + p.Project + "/subscriptions/" + name
	}
	s, err := p.Client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: name})
	if err != nil {
		return "", fmt.Errorf("look up topic of subscription %s: %w", name, err)
	}
	return dlarchive.ResourceID(s.GetTopic()), nil
}

// CheckTopic returns an error unless topic exists.
func (p *PubSubAdmin) CheckTopic(ctx context.Context, topic string) error {
	name := "projects/" + p.Project + "/topics/" + topic
	if _, err := p.Client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: name}); err != nil {
		return fmt.Errorf("topic %s: %w", name, err)
	}
	return nil
}

// Outcome is what a run did with one dead letter.
type Outcome string

// Outcomes.
const (
	Published    Outcome = "published"
	Failed       Outcome = "failed"
	Refused      Outcome = "refused" // replayed before; not forced
	WouldPublish Outcome = "would-publish"
	WouldRefuse  Outcome = "would-refuse"
)

// Item is the result for one dead letter.
type Item struct {
	Entry        dlq.Entry
	Topic        string
	Message      messaging.Message // as (it would be) published
	Outcome      Outcome
	NewMessageID string
	Priors       []Prior
	Err          error
}

// Report is the result of a run.
type Report struct {
	// ReplayID is the run's id ("" for a dry run).
	ReplayID                   string
	DryRun                     bool
	Items                      []Item
	Published, Failed, Refused int
}

// Options configure one run. The zero value replays every dead letter at
// an unlimited rate.
type Options struct {
	Filter dlq.Filter
	// DryRun reports what would be replayed; nothing is published or recorded.
	DryRun bool
	// Force replays dead letters that were replayed before.
	Force bool
	// By names who runs the replay (audit, replayed-by). Required unless DryRun.
	By string
	// Limiter paces publishes; nil means unlimited.
	Limiter Limiter
	// Clock defaults to SystemClock.
	Clock Clock
	// Progress receives a line every ProgressEvery messages and at most
	// once a second otherwise; nil means no progress output.
	Progress io.Writer
	// ProgressEvery defaults to 100.
	ProgressEvery int
	// PublishTimeout bounds each publish; default 30s.
	PublishTimeout time.Duration
	// AuditFilters are recorded with the run (the command line's filters).
	AuditFilters map[string]any
}

// Replayer runs replays. Fields other than Archive may be nil for a dry
// run (without Audit a dry run cannot tell earlier replays; without Topics
// dead letters that name only their subscription stay unresolved).
type Replayer struct {
	Archive   dlq.Archive
	Publisher messaging.Publisher
	Topics    TopicResolver
	Audit     *Audit
}

// ErrNoBy is returned when a run that records an audit has no Options.By.
var ErrNoBy = errors.New("replay: who runs the replay is required (--by)")

// Run replays the dead letters matching opts.Filter, oldest first, one at
// a time. A publish failure is recorded and the run goes on; a failure of
// the archive or of the audit database ends the run with an error (nothing
// is published without its audit row), returning the report so far.
func (r *Replayer) Run(ctx context.Context, opts Options) (Report, error) {
	clock := opts.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = 30 * time.Second
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 100
	}
	rep := Report{DryRun: opts.DryRun}
	if !opts.DryRun {
		switch {
		case opts.By == "":
			return rep, ErrNoBy
		case r.Audit == nil || r.Publisher == nil:
			return rep, errors.New("replay: an audit database and a publisher are required")
		}
	}
	entries, err := r.Archive.List(ctx, opts.Filter)
	if err != nil {
		return rep, err
	}
	if !opts.DryRun {
		rep.ReplayID = uuid.NewString()
		err := r.Audit.BeginRun(ctx, Run{ID: rep.ReplayID, By: opts.By, Archive: r.Archive.String(),
			Filters: opts.AuditFilters, Forced: opts.Force, Selected: len(entries)})
		if err != nil {
			return rep, err
		}
	}
	prog := progress{w: opts.Progress, every: opts.ProgressEvery, clock: clock, total: len(entries), start: clock.Now(), last: clock.Now()}
	for _, e := range entries {
		it, err := r.one(ctx, e, opts, rep.ReplayID, clock)
		rep.Items = append(rep.Items, it)
		switch it.Outcome {
		case Published:
			rep.Published++
		case Failed:
			rep.Failed++
		case Refused, WouldRefuse:
			rep.Refused++
		}
		prog.step(&rep)
		if err != nil {
			if !opts.DryRun {
				_ = r.Audit.FinishRun(context.WithoutCancel(ctx), rep.ReplayID, rep.Published, rep.Failed, rep.Refused, "aborted")
			}
			prog.done(&rep)
			return rep, err
		}
	}
	prog.done(&rep)
	if !opts.DryRun {
		result := "completed"
		if rep.Failed > 0 {
			result = "completed_with_errors"
		}
		if err := r.Audit.FinishRun(ctx, rep.ReplayID, rep.Published, rep.Failed, rep.Refused, result); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// one handles a dead letter. An error return ends the run.
func (r *Replayer) one(ctx context.Context, e dlq.Entry, opts Options, replayID string, clock Clock) (Item, error) {
	it := Item{Entry: e, Topic: e.Topic()}
	if ref, omitted, err := e.Reference(); omitted {
		// The archive holds a reference, not the body: publishing it would
		// hand consumers a document that is not the event. --force does not
		// change that.
		it.Outcome, it.Err = Failed, ref.Err()
		if err != nil {
			it.Err = fmt.Errorf("%w (reference unreadable: %v)", deadletter.ErrBodyOmitted, err)
		}
		return it, nil
	}
	if it.Topic == "" && r.Topics != nil {
		if sub := e.SourceSubscription(); sub != "" {
			topic, err := r.Topics.SubscriptionTopic(ctx, sub)
			if err != nil {
				it.Err = err
			}
			it.Topic = topic
		}
	}
	if it.Topic == "" {
		it.Outcome = Failed
		if it.Err == nil {
			it.Err = errors.New("original topic unknown (no original_topic, dlq-source-topic or subscription)")
		}
		return it, nil
	}
	count := func(priors []Prior) int { return max(len(priors), previousCount(e)) + 1 }
	if opts.DryRun {
		if r.Audit != nil {
			priors, err := r.Audit.Priors(ctx, e.MessageID)
			if err != nil {
				return it, err
			}
			it.Priors = priors
		}
		it.Message = Message(e, Stamp{At: clock.Now(), By: opts.By, Count: count(it.Priors)})
		it.Outcome = WouldPublish
		if len(it.Priors) > 0 && !opts.Force {
			it.Outcome = WouldRefuse
		}
		return it, nil
	}
	if opts.Limiter != nil {
		if err := opts.Limiter.Wait(ctx); err != nil {
			it.Outcome, it.Err = Failed, err
			return it, fmt.Errorf("replay: rate limiter: %w", err)
		}
	}
	n, priors, err := r.Audit.Claim(ctx, ClaimMessage{
		ReplayID: replayID, ArchiveID: e.MessageID, EventID: e.EventID(),
		OriginalMessageID: e.Attributes[deadletter.AttrMessageID], Topic: it.Topic, Count: count,
	}, opts.Force)
	it.Priors = priors
	if errors.Is(err, ErrAlreadyReplayed) {
		it.Outcome, it.Err = Refused, err
		return it, nil
	}
	if err != nil {
		it.Outcome, it.Err = Failed, err
		return it, err
	}
	it.Message = Message(e, Stamp{ReplayID: replayID, At: clock.Now(), By: opts.By, Count: n})
	pctx, cancel := context.WithTimeout(ctx, opts.PublishTimeout)
	id, pubErr := r.Publisher.Publish(pctx, it.Topic, it.Message)
	cancel()
	if pubErr != nil {
		it.Outcome, it.Err = Failed, fmt.Errorf("publish to %s: %w", it.Topic, pubErr)
	} else {
		it.Outcome, it.NewMessageID = Published, id
	}
	if err := r.Audit.Finish(context.WithoutCancel(ctx), replayID, e.MessageID, id, it.Err); err != nil {
		return it, err
	}
	return it, nil
}

type progress struct {
	w           io.Writer
	every       int
	clock       Clock
	total, n    int
	printed     int
	start, last time.Time
}

func (p *progress) step(rep *Report) {
	p.n++
	if p.w == nil {
		return
	}
	now := p.clock.Now()
	if p.n%p.every == 0 || now.Sub(p.last) >= time.Second {
		p.print(rep, now)
	}
}

func (p *progress) done(rep *Report) {
	if p.w != nil && p.n > 0 && p.printed != p.n {
		p.print(rep, p.clock.Now())
	}
}

func (p *progress) print(rep *Report, now time.Time) {
	p.last, p.printed = now, p.n
	elapsed := now.Sub(p.start)
	verb := "published"
	if rep.DryRun {
		verb = "would publish"
	}
	done := rep.Published
	if rep.DryRun {
		done = p.n - rep.Refused - rep.Failed
	}
	line := fmt.Sprintf("replay: %d/%d %s=%d failed=%d refused=%d elapsed=%s", p.n, p.total, verb, done, rep.Failed, rep.Refused, elapsed.Round(time.Millisecond))
	if s := elapsed.Seconds(); s > 0 && !rep.DryRun {
		line += fmt.Sprintf(" rate=%.1f/s", float64(p.n)/s)
	}
	fmt.Fprintln(p.w, line)
}
