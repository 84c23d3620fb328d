package handler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"example.com/platform/shared/events"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/parking"
	"example.com/platform/shared/retry"
)

// Attributes of a replayed message the parker reads. eventctl sets them
// (tools/ops/replay).
const (
	// AttrReplayID marks a message an operator replayed.
	AttrReplayID = "replay-id"
	// AttrParkedHead names the event key of the parked head a replay is
	// for (eventctl parked replay sets it), so even a head without a
	// CloudEvent id is recognised.
	AttrParkedHead = "parked-head"
)

// DrainLease is the lease a delivery holds on a parked key while it
// applies the key's parked events, renewed before each event. A delivery
// that crashed mid-release blocks the key's release for at most this long
// (the redelivery of its trigger then goes on). An apply that outlasts it
// stays safe: a second drainer meets the first one's idempotency claim
// (it waits for it, or stops with ErrInProgress), and the first stops at
// its next renewal.
const DrainLease = 10 * time.Second

// ErrReleaseInProgress is the transient error of a delivery that would
// drain a parked key another delivery is draining: Pub/Sub redelivers it
// later, when the release is done or its lease expired.
var ErrReleaseInProgress = errors.New("handler: the parked key is being released by another delivery")

// parker keeps per-key order on the subscriptions in Config.Ordering (see
// shared/parking): it parks the key of an event it dead-letters, parks the
// later events of a parked key, and applies them in order once the head is
// replayed or discarded. On other subscriptions it only sends each
// delivery to apply or reject.
type parker struct {
	cfg *Config
	// apply runs a decoded event: dead-letter, last attempt, retry,
	// idempotency, function. reject dead-letters an undecodable one.
	apply, reject Func
}

// direct applies in (or dead-letters it when it could not be decoded).
func (p *parker) direct(ctx context.Context, in *events.Incoming) error {
	if decodeErrorOf(ctx) != nil {
		return p.reject(ctx, in)
	}
	return p.apply(ctx, in)
}

// serve is the parker's Func.
func (p *parker) serve(ctx context.Context, in *events.Incoming) error {
	sub, ordered := p.ordered(in)
	if !ordered || in.Message.OrderingKey == "" {
		return p.direct(ctx, in)
	}
	store := p.cfg.Parking
	key := parking.Key{Subscription: sub, OrderingKey: in.Message.OrderingKey}
	ev := p.event(in)
	// An event parked while its key is released fails (ErrNotParked):
	// look again, the key is then applied normally.
	for range 3 {
		st, parked, err := store.Lookup(ctx, key)
		if err != nil {
			return err
		}
		if !parked {
			return p.first(ctx, key, ev, in)
		}
		if st.HeadEventKey == ev.EventKey || events.LookupAttribute(in.Message.Attributes, AttrParkedHead) == st.HeadEventKey {
			return p.head(ctx, key, st.State, ev, in)
		}
		added, err := store.Add(ctx, key, ev)
		if errors.Is(err, parking.ErrNotParked) {
			continue
		}
		if err != nil {
			return err
		}
		if st.State == parking.Draining {
			return p.drain(ctx, key, in)
		}
		setOutcome(ctx, "parked behind a dead letter")
		if !added {
			setOutcome(ctx, "parked already (redelivery)")
		}
		return nil
	}
	return retry.Transientf("handler: parked key %s kept changing while parking an event", key)
}

// first applies an event of a key that is not parked; when it is
// dead-lettered, the key is parked with it as its head. Parking runs
// within AfterBudget; if it fails, the delivery is not acknowledged and its
// redelivery dead-letters and parks again (the dead letter is then
// duplicated, never lost, and the key never skips the event).
func (p *parker) first(ctx context.Context, key parking.Key, ev parking.Event, in *events.Incoming) error {
	err := p.direct(ctx, in)
	dl := deadLetterOf(ctx)
	if err != nil || dl == nil {
		return err
	}
	actx, cancel := p.cfg.afterDeadline(ctx)
	defer cancel()
	err = p.cfg.Parking.Park(actx, parking.Head{
		Key: key, Consumer: p.cfg.Consumer, Topic: p.cfg.Ordering[key.Subscription].Topic,
		Head: ev, DeadLetterID: dl.id, Reason: dl.reason,
	})
	if err != nil {
		return retry.Transient(fmt.Errorf("dead-lettered, but its ordering key was not parked (the redelivery parks it): %w", err))
	}
	p.cfg.Logger.WarnContext(ctx, "ordering key parked: later events of the key wait for the dead letter's replay or discard (eventctl parked)",
		"parked_subscription", key.Subscription, "parked_key", key.OrderingKey, "dead_letter_message_id", dl.id)
	setOutcome(ctx, "dead-lettered; ordering key parked")
	return nil
}

// head handles a delivery of a parked key's head: a redelivery of the
// dead-lettered message is acknowledged; a replay (state replaying, or a
// replay attribute) is applied and, when it succeeds, the parked events
// after it; a head arriving while the key drains (the replay's
// redelivery, or the trigger of a discard) goes on draining.
func (p *parker) head(ctx context.Context, key parking.Key, state parking.State, ev parking.Event, in *events.Incoming) error {
	replay := events.LookupAttribute(in.Message.Attributes, AttrReplayID) != ""
	switch {
	case state == parking.Draining:
		return p.drain(ctx, key, in)
	case state == parking.Parked && !replay:
		setOutcome(ctx, "dead-lettered already; ordering key parked")
		return nil
	}
	store := p.cfg.Parking
	if err := store.MarkReplaying(ctx, key); err != nil {
		return err
	}
	if err := p.direct(ctx, in); err != nil {
		return err
	}
	if dl := deadLetterOf(ctx); dl != nil {
		return p.repark(ctx, key, ev, dl)
	}
	if err := store.HeadResolved(ctx, key); err != nil {
		return err
	}
	return p.drain(ctx, key, in)
}

// repark makes the dead-lettered event ev the new head of key.
func (p *parker) repark(ctx context.Context, key parking.Key, ev parking.Event, dl *deadLettered) error {
	actx, cancel := p.cfg.afterDeadline(ctx)
	defer cancel()
	if err := p.cfg.Parking.Repark(actx, key, ev, dl.id, dl.reason); err != nil {
		return retry.Transient(fmt.Errorf("dead-lettered while its key is parked, but the key's head was not updated (the redelivery does it): %w", err))
	}
	p.cfg.Logger.WarnContext(ctx, "ordering key stays parked: another of its events was dead-lettered",
		"parked_subscription", key.Subscription, "parked_key", key.OrderingKey, "dead_letter_message_id", dl.id)
	setOutcome(ctx, "dead-lettered; ordering key stays parked")
	return nil
}

// drain applies the parked events of key in order, once each, through the
// normal path (apply or reject), and releases the key when none is left.
// It holds the key's drain lease, renewed at each event. It stops with a
// transient error, so that the trigger is redelivered and the redelivery
// goes on, when an event fails transiently or half the delivery's time is
// spent; it stops with success when an event is dead-lettered (that event
// becomes the key's head and the key stays parked).
func (p *parker) drain(ctx context.Context, key parking.Key, trigger *events.Incoming) error {
	store := p.cfg.Parking
	token := newToken()
	lease := DrainLease
	stop := func() {
		actx, cancel := p.cfg.afterDeadline(ctx)
		defer cancel()
		if err := store.StopDrain(actx, key, token); err != nil {
			p.cfg.Logger.WarnContext(ctx, "could not give back the drain lease; it expires by itself", "error", err.Error(), "lease", lease.String())
		}
	}
	applied := 0
	for {
		ok, err := store.StartDrain(ctx, key, token, lease)
		if err != nil {
			return err
		}
		if !ok {
			if applied == 0 {
				return retry.Transient(fmt.Errorf("%w: %s", ErrReleaseInProgress, key))
			}
			return retry.Transient(fmt.Errorf("%w: %s", parking.ErrDrainLost, key))
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < p.cfg.Timeout/2 {
			stop()
			return retry.Transientf("handler: released %d parked events of %s; the rest waits for the redelivery (time budget)", applied, key)
		}
		e, ok, err := store.Next(ctx, key)
		if err != nil {
			stop()
			return err
		}
		if !ok {
			done, err := store.Finish(ctx, key, token)
			if err != nil {
				return err
			}
			if done {
				p.cfg.Logger.InfoContext(ctx, "ordering key released", "parked_subscription", key.Subscription, "parked_key", key.OrderingKey, "applied", applied)
				setOutcome(ctx, fmt.Sprintf("processed; ordering key released after %d parked events", applied))
				return nil
			}
			continue // an event was parked meanwhile
		}
		dl, err := p.applyParked(ctx, key, e, trigger)
		if err != nil {
			stop()
			return err
		}
		if dl != nil {
			return p.repark(ctx, key, e, dl)
		}
		if err := store.Applied(ctx, key, e.Seq); err != nil {
			stop()
			return err
		}
		applied++
	}
}

// applyParked applies the parked event e of key through the normal path,
// as part of the trigger's delivery (its attempt counts), and returns the
// dead letter it became, if it did.
func (p *parker) applyParked(ctx context.Context, key parking.Key, e parking.Event, trigger *events.Incoming) (*deadLettered, error) {
	d := events.Delivery{
		Subscription: trigger.Delivery.Subscription, MessageID: e.MessageID, OrderingKey: key.OrderingKey,
		PublishTime: e.ParkedAt, Attempt: trigger.Delivery.Attempt,
	}
	in, decodeErr := events.DecodeMessage(e.Message(key), d, p.cfg.MaxBody)
	ctx, o := withOutcome(in.Context(ctx))
	var err error
	if decodeErr != nil {
		err = p.reject(withDecodeError(ctx, decodeErr), in)
	} else {
		err = p.apply(ctx, in)
	}
	if err != nil {
		p.cfg.Logger.WarnContext(ctx, "parked event failed; the release goes on at the redelivery", "parked_seq", e.Seq, "error", err.Error())
		return nil, err
	}
	p.cfg.Logger.InfoContext(ctx, "parked event "+o.get(), "parked_seq", e.Seq, "parked_at", e.ParkedAt)
	return o.deadLetter, nil
}

// ordered returns the id of in's subscription and whether the consumer
// consumes it with ordering.
func (p *parker) ordered(in *events.Incoming) (string, bool) {
	if len(p.cfg.Ordering) == 0 {
		return "", false
	}
	sub := SubscriptionID(in.Delivery.Subscription)
	_, ok := p.cfg.Ordering[sub]
	return sub, ok
}

// SubscriptionID is the id of a subscription named either by its id or
// by its full name (projects/P/subscriptions/ID, as push requests carry it).
func SubscriptionID(name string) string {
	return name[strings.LastIndexByte(name, '/')+1:]
}

// event is in as a parking.Event: its key within the subscription is the
// CloudEvent's idempotency key (source and id), or its message id when it
// has none.
func (p *parker) event(in *events.Incoming) parking.Event {
	attrs := in.Message.Attributes
	source, id, typ := events.LookupAttribute(attrs, "ce-source"), events.LookupAttribute(attrs, "ce-id"), events.LookupAttribute(attrs, "ce-type")
	if in.Event.Context != nil {
		source, id, typ = in.Event.Source(), in.Event.ID(), in.Event.Type()
	}
	ev := parking.Event{EventID: id, EventType: typ, MessageID: in.Delivery.MessageID, Data: in.Message.Data, Attrs: attrs}
	if source != "" && id != "" {
		ev.EventKey = idempotency.KeyFor(p.cfg.Consumer, source, id).ID
	} else {
		ev.EventKey = "message:" + in.Delivery.MessageID
	}
	return ev
}

// deadLetterOf is the dead letter the delivery of ctx became, or nil.
func deadLetterOf(ctx context.Context) *deadLettered {
	if o, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
		return o.deadLetter
	}
	return nil
}

// lastAttempt turns a transient failure on the last delivery attempt of
// an ordered subscription into a permanent one, so the handler dead-letters
// it and parks its key instead of leaving Pub/Sub to dead-letter it and
// deliver the key's next message. A key held by another delivery's lease
// (idempotency.ErrInProgress) stays transient: that delivery decides.
func lastAttempt(ordering map[string]OrderedSubscription) Middleware {
	return func(next Func) Func {
		return func(ctx context.Context, in *events.Incoming) error {
			err := next(ctx, in)
			if err == nil || retry.IsPermanent(err) || errors.Is(err, idempotency.ErrInProgress) {
				return err
			}
			s, ok := ordering[SubscriptionID(in.Delivery.Subscription)]
			if !ok || s.MaxDeliveryAttempts <= 0 || in.Delivery.Attempt < s.MaxDeliveryAttempts {
				return err
			}
			return retry.Permanent(fmt.Errorf("gave up on the last of %d delivery attempts: %w", s.MaxDeliveryAttempts, err))
		}
	}
}

func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
