package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"example.com/platform/shared/handler"
	"example.com/platform/shared/parking"
	"example.com/platform/shared/postgres"
	"example.com/platform/tools/ops/cli"
	"example.com/platform/tools/ops/replay"
)

// parkKey parks order-1 of payment--order.created behind the dead letter
// of ev-1, with ev-2 and ev-3 parked after it.
func (s *stack) parkKey(t *testing.T) parking.Key {
	t.Helper()
	ctx := context.Background()
	if err := postgres.Migrate(ctx, s.pool, parking.Component, parking.Migrations()); err != nil {
		t.Fatal(err)
	}
	store := parking.New(s.pool)
	key := parking.Key{Subscription: "payment--order.created", OrderingKey: "order-1"}
	ev := func(id, typ string) parking.Event {
		return parking.Event{EventKey: "orders-api/" + id, EventID: id, EventType: typ, MessageID: "m-" + id,
			Data: []byte(`{"order_id":"order-1"}`), Attrs: map[string]string{"ce-id": id, "ce-type": typ, "ce-source": "orders-api"}}
	}
	if err := store.Park(ctx, parking.Head{Key: key, Consumer: "payment", Topic: "order.created", Head: ev("ev-1", typeCreated),
		DeadLetterID: "dl-1", Reason: "payment gateway: unexpected answer (HTTP 400)"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ev-2", "ev-3"} {
		if _, err := store.Add(ctx, key, ev(id, "com.example.orders.order.cancelled.v1")); err != nil {
			t.Fatal(err)
		}
	}
	return key
}

func TestParkedListShowReplayDiscard(t *testing.T) {
	s := newStack(t)
	s.createTopics(t)
	key := s.parkKey(t)
	if replay.AttrReplayID != handler.AttrReplayID {
		t.Fatalf("eventctl marks replays with %q, the handler looks for %q", replay.AttrReplayID, handler.AttrReplayID)
	}

	r := run(t, "parked", "list")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "payment--order.created") || !strings.Contains(r.stdout, "order-1") ||
		!strings.Contains(r.stdout, "HTTP 400") || !strings.Contains(r.stdout, "parked ") {
		t.Fatalf("list: %+v", r)
	}
	r = run(t, "parked", "list", "--json", "--consumer", "payment")
	var heads []parking.Head
	if err := json.Unmarshal([]byte(r.stdout), &heads); err != nil || len(heads) != 1 || heads[0].Parked != 2 || heads[0].Head.EventID != "ev-1" {
		t.Fatalf("list --json: %v %+v", err, heads)
	}
	if r = run(t, "parked", "list", "--subscription", "shipment--payment.processed"); r.code != cli.ExitOK || !strings.Contains(r.stdout, "no parked keys") {
		t.Fatalf("filtered list: %+v", r)
	}
	r = run(t, "parked", "show", "payment--order.created", "order-1")
	if r.code != cli.ExitOK || strings.Index(r.stdout, "ev-2") > strings.Index(r.stdout, "ev-3") || !strings.Contains(r.stdout, "dl-1") {
		t.Fatalf("show: %+v", r)
	}
	if r = run(t, "parked", "show", "payment--order.created", "order-9"); r.code != cli.ExitError || !strings.Contains(r.stderr, "not parked") {
		t.Fatalf("show of an unparked key: %+v", r)
	}
	if r = run(t, "parked", "show", "payment--order.created"); r.code != cli.ExitUsage {
		t.Fatalf("show without a key: %+v", r)
	}
	if r = run(t, "parked", "discard", "payment--order.created", "order-1"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "--reason") {
		t.Fatalf("discard without a reason: %+v", r)
	}

	// Replay: the head goes back to its topic with its ordering key and
	// the replay attributes; the key waits for it (replaying).
	r = run(t, "parked", "replay", "projects/p/subscriptions/payment--order.created", "order-1")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "replayed head ev-1") {
		t.Fatalf("replay: %+v", r)
	}
	pub := s.published(t)["ev-1"]
	if len(pub) != 1 || pub[0].Topic != "order.created" || pub[0].Message.OrderingKey != "order-1" ||
		pub[0].Message.Attributes[handler.AttrReplayID] == "" || pub[0].Message.Attributes[handler.AttrParkedHead] != "orders-api/ev-1" ||
		pub[0].Message.Attributes["replayed-by"] != "alice@test" || string(pub[0].Message.Data) != `{"order_id":"order-1"}` {
		t.Fatalf("replayed head: %+v", pub)
	}
	h, _, err := parking.New(s.pool).Get(context.Background(), key)
	if err != nil || h.State != parking.Replaying || h.ReleasedBy != "alice@test" {
		t.Fatalf("after replay: %+v %v", h, err)
	}

	// Discard: the first parked event triggers the release.
	r = run(t, "parked", "discard", "payment--order.created", "order-1", "--reason", "customer asked", "--by", "bob")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "triggered with parked event ev-2") {
		t.Fatalf("discard: %+v", r)
	}
	if pub := s.published(t)["ev-2"]; len(pub) != 1 || pub[0].Message.OrderingKey != "order-1" || pub[0].Message.Attributes["replayed-by"] != "bob" {
		t.Fatalf("trigger: %+v", pub)
	}
	if n := s.count(t, `SELECT count(*) FROM parked_releases WHERE action = 'discard' AND reason = 'customer asked' AND released_by = 'bob'`); n != 1 {
		t.Fatalf("discard audit rows %d", n)
	}
}
