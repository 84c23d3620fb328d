package cli

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/google/uuid"

	"example.com/platform/shared/handler"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/parking"
	"example.com/platform/tools/ops/replay"
)

func (c *Command) parkedList(ctx context.Context, args []string) error {
	f := c.newFlags("parked list", "[--subscription S] [--consumer C] [--json]",
		"Lists the parked ordering keys: keys whose ordering consumer dead-lettered an event (the head),\n"+
			"with the dead letter's reason and the number of later events parked behind it, oldest first.")
	sub := f.String("subscription", "", "only this subscription (e.g. payment--order.created)")
	consumer := f.String("consumer", "", "only this consumer (function)")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	pool, closeDB, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	heads, err := parking.New(pool).List(ctx, parking.Filter{Subscription: *sub, Consumer: *consumer})
	if err != nil {
		return missingTable(err, "parked_keys")
	}
	if *asJSON {
		if heads == nil {
			heads = []parking.Head{}
		}
		return writeJSON(c.Stdout, heads)
	}
	if len(heads) == 0 {
		fmt.Fprintln(c.Stdout, "parked: no parked keys")
		return nil
	}
	tw := newTable(c.Stdout)
	fmt.Fprintln(tw, "SUBSCRIPTION\tKEY\tSTATE\tPARKED EVENTS\tDEAD LETTERS\tSINCE\tHEAD EVENT\tREASON")
	now := c.Clock.Now()
	for _, h := range heads {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s %s\t%s\n", h.Subscription, h.OrderingKey, h.State, h.Parked, h.DeadLetters,
			now.Sub(h.ParkedAt).Round(time.Second), dash(h.Head.EventType), dash(h.Head.EventID), dash(short(h.Reason, 100)))
	}
	return tw.Flush()
}

func (c *Command) parkedShow(ctx context.Context, args []string) error {
	f := c.newFlags("parked show", "SUBSCRIPTION KEY [--json]",
		"Shows one parked key: its head (the dead-lettered event, its reason and dead letter id), the last\n"+
			"release asked for, and every event parked behind it in the order they will be applied.")
	asJSON := f.Bool("json", false, "print JSON")
	key, err := f.parseKey(args)
	if err != nil {
		return err
	}
	pool, closeDB, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	h, evs, err := parking.New(pool).Get(ctx, key)
	if err != nil {
		return missingTable(err, "parked_keys")
	}
	if *asJSON {
		if evs == nil {
			evs = []parking.Event{}
		}
		return writeJSON(c.Stdout, map[string]any{"key": h, "events": evs})
	}
	tw := newTable(c.Stdout)
	field := fieldWriter(tw)
	field("Subscription", h.Subscription)
	field("Ordering key", h.OrderingKey)
	field("Consumer", h.Consumer)
	field("Topic", h.Topic)
	field("State", string(h.State))
	field("Parked at", h.ParkedAt.UTC().Format(time.RFC3339))
	field("Dead letters", fmt.Sprint(h.DeadLetters))
	field("Head event", h.Head.EventType+" "+h.Head.EventID)
	field("Head message", h.Head.MessageID)
	field("Dead letter id", h.DeadLetterID)
	field("Reason", h.Reason)
	if h.ReleaseAction != "" {
		field("Last release", fmt.Sprintf("%s by %s at %s %s", h.ReleaseAction, h.ReleasedBy, h.ReleaseAt.UTC().Format(time.RFC3339), h.ReleaseReason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "\nParked events (%d), applied in this order after the head:\n", len(evs))
	tw = newTable(c.Stdout)
	fmt.Fprintln(tw, "SEQ\tPARKED AT\tTYPE\tEVENT ID\tMESSAGE ID")
	for _, e := range evs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Seq, e.ParkedAt.UTC().Format(time.RFC3339), dash(e.EventType), dash(e.EventID), e.MessageID)
	}
	return tw.Flush()
}

func (c *Command) parkedReplay(ctx context.Context, args []string) error {
	f := c.newFlags("parked replay", "SUBSCRIPTION KEY [--by NAME]",
		"Replays the head of a parked key once its cause is fixed: republishes the dead-lettered event to\n"+
			"its topic with the key's ordering key. Its consumer applies it, then every parked event in order,\n"+
			"once each, and releases the key; if it fails again it stays the head. Other subscriptions of the\n"+
			"topic see a duplicate and skip it. Run it again if the replayed message was lost.")
	return c.parkedRelease(ctx, f, args, parking.ActionReplay)
}

func (c *Command) parkedDiscard(ctx context.Context, args []string) error {
	f := c.newFlags("parked discard", "SUBSCRIPTION KEY --reason TEXT [--by NAME]",
		"Gives up the head of a parked key (recorded with the reason) and releases the key: its consumer\n"+
			"applies the parked events in order, once each, without the head (the first parked event is\n"+
			"republished to trigger it). The dead letter stays in the archive.")
	return c.parkedRelease(ctx, f, args, parking.ActionDiscard)
}

func (c *Command) parkedRelease(ctx context.Context, f *flags, args []string, action string) error {
	by := f.String("by", "", "who asks, for the audit (default $EVENTCTL_USER, else user@host)")
	reason := f.String("reason", "", "why (required to discard)")
	key, err := f.parseKey(args)
	if err != nil {
		return err
	}
	if action == parking.ActionDiscard && strings.TrimSpace(*reason) == "" {
		return f.usagef("--reason is required to discard a dead letter")
	}
	who := *by
	if who == "" {
		who = c.who()
	}
	pool, closeDB, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	// Reach Pub/Sub before changing anything, so a release is not left
	// without its trigger because of the configuration.
	client, _, err := f.openPubSub(ctx, true)
	if err != nil {
		return err
	}
	defer client.Close()
	rel, err := parking.New(pool).RequestRelease(ctx, parking.Release{Key: key, Action: action, By: who, Reason: *reason})
	if err != nil {
		return missingTable(err, "parked_keys")
	}
	if rel.Trigger == nil {
		fmt.Fprintf(c.Stdout, "parked: %s released (head %s discarded, nothing was parked behind it)\n", key, rel.Head.Head.EventID)
		return nil
	}
	pub := messaging.NewPubSub(client)
	defer pub.Stop()
	m := triggerMessage(key, rel, who, c.Clock.Now())
	pctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	id, err := pub.Publish(pctx, rel.Head.Topic, m)
	if err != nil {
		return fmt.Errorf("the release of %s is recorded but its trigger was not published to %s (run the command again): %w", key, rel.Head.Topic, err)
	}
	what := "replayed head " + rel.Head.Head.EventID
	if action == parking.ActionDiscard {
		what = fmt.Sprintf("discarded head %s (%s); triggered with parked event %s", rel.Head.Head.EventID, strings.TrimSpace(*reason), rel.Trigger.EventID)
	}
	fmt.Fprintf(c.Stdout, "parked: %s %s as message %s on %s; %d parked events follow in order\n", key, what, id, rel.Head.Topic, rel.Head.Parked)
	return nil
}

// triggerMessage is the message that makes the consumer release key: the
// trigger event with its original attributes, the replay attributes and
// the key's head.
func triggerMessage(key parking.Key, rel parking.Released, by string, now time.Time) messaging.Message {
	m := rel.Trigger.Message(key)
	attrs := maps.Clone(m.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	for k := range attrs {
		if strings.HasPrefix(k, "replay-") || k == replay.AttrReplayedAt || k == replay.AttrReplayedBy {
			delete(attrs, k)
		}
	}
	attrs[replay.AttrReplayID] = "parked-" + uuid.NewString()
	attrs[replay.AttrReplayedAt] = now.UTC().Format(time.RFC3339Nano)
	attrs[replay.AttrReplayedBy] = by
	attrs[handler.AttrParkedHead] = rel.Head.Head.EventKey
	m.Attributes = attrs
	return m
}

// parseKey parses the SUBSCRIPTION KEY arguments.
func (f *flags) parseKey(args []string) (parking.Key, error) {
	pos, err := f.parse(args)
	if err != nil {
		return parking.Key{}, err
	}
	if len(pos) != 2 || pos[0] == "" || pos[1] == "" {
		return parking.Key{}, f.usagef("%s takes a subscription and an ordering key", f.name)
	}
	return parking.Key{Subscription: handler.SubscriptionID(pos[0]), OrderingKey: pos[1]}, nil
}
