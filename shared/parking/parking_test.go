package parking_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/parking"
	"example.com/platform/shared/postgres"
	"example.com/platform/shared/testing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newStore(t *testing.T) (*parking.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := postgres.Migrate(context.Background(), pool, parking.Component, parking.Migrations()); err != nil {
		t.Fatal(err)
	}
	return parking.New(pool), pool
}

var key = parking.Key{Subscription: "payment--order.created", OrderingKey: "order-1"}

func event(id string) parking.Event {
	return parking.Event{EventKey: "src/" + id, EventID: id, EventType: "t", MessageID: "m-" + id, Data: []byte(`{}`), Attrs: map[string]string{"ce-id": id}}
}

func park(t *testing.T, s *parking.Store, parked ...string) {
	t.Helper()
	ctx := context.Background()
	if err := s.Park(ctx, parking.Head{Key: key, Consumer: "payment", Topic: "order.created", Head: event("head"), DeadLetterID: "dl-1", Reason: "bad"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range parked {
		if added, err := s.Add(ctx, key, event(id)); !added || err != nil {
			t.Fatalf("add %s: %v %v", id, added, err)
		}
	}
}

func TestAddKeepsArrivalOrderAndIgnoresRedeliveries(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	park(t, s, "e1", "e2")
	if added, err := s.Add(ctx, key, event("e1")); added || err != nil {
		t.Fatalf("redelivered event added again: %v %v", added, err)
	}
	h, evs, err := s.Get(ctx, key)
	if err != nil || h.Parked != 2 || len(evs) != 2 || evs[0].EventID != "e1" || evs[1].EventID != "e2" || evs[0].Attrs["ce-id"] != "e1" {
		t.Fatalf("get: %+v %+v %v", h, evs, err)
	}
	if _, err := s.Add(ctx, parking.Key{Subscription: key.Subscription, OrderingKey: "other"}, event("x")); !errors.Is(err, parking.ErrNotParked) {
		t.Fatalf("add to an unparked key: %v, want ErrNotParked", err)
	}
}

// An event parked while the key is being released either is seen by
// Finish (which then does not release) or fails with ErrNotParked: it is
// never left behind a released key.
func TestFinishWaitsForAnEventBeingParked(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	park(t, s)
	if _, err := s.RequestRelease(ctx, parking.Release{Key: key, Action: parking.ActionDiscard, By: "t", Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	// Nothing was parked: the discard released the key at once.
	if _, ok, _ := s.Lookup(ctx, key); ok {
		t.Fatal("discard with nothing parked left the key parked")
	}

	park(t, s, "e1")
	if err := s.HeadResolved(ctx, key); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.StartDrain(ctx, key, "tok", time.Minute); !ok || err != nil {
		t.Fatalf("start drain: %v %v", ok, err)
	}
	if err := s.Applied(ctx, key, 1); err != nil {
		t.Fatal(err)
	}
	// A concurrent delivery is parking e2 and has not committed yet.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO parked_events (subscription, ordering_key, event_key, event_id, event_type, message_id, data, attributes)
VALUES ($1, $2, 'src/e2', 'e2', 't', 'm-e2', '', '{}')`, key.Subscription, key.OrderingKey); err != nil {
		t.Fatal(err)
	}
	type result struct {
		done bool
		err  error
	}
	finished := make(chan result)
	go func() {
		done, err := s.Finish(ctx, key, "tok")
		finished <- result{done, err}
	}()
	// Finish waits on the key's row lock until the parking commits.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case r := <-finished:
			t.Fatalf("Finish returned %+v while an event was being parked", r)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Finish never waited for the parking transaction")
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-finished; r.done || r.err != nil {
		t.Fatalf("Finish = %+v: it must see the event parked meanwhile", r)
	}
	e, ok, err := s.Next(ctx, key)
	if !ok || err != nil || e.EventID != "e2" {
		t.Fatalf("next %+v %v %v", e, ok, err)
	}
	if err := s.Applied(ctx, key, e.Seq); err != nil {
		t.Fatal(err)
	}
	if done, err := s.Finish(ctx, key, "tok"); !done || err != nil {
		t.Fatalf("finish: %v %v", done, err)
	}
	if _, err := s.Add(ctx, key, event("e3")); !errors.Is(err, parking.ErrNotParked) {
		t.Fatalf("add after release: %v, want ErrNotParked", err)
	}
}

func TestDrainLeaseIsExclusiveUntilItExpires(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	park(t, s, "e1")
	if ok, _ := s.StartDrain(ctx, key, "a", time.Minute); ok {
		t.Fatal("drain started on a parked key (not draining)")
	}
	if err := s.HeadResolved(ctx, key); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.StartDrain(ctx, key, "a", 200*time.Millisecond); !ok || err != nil {
		t.Fatalf("a: %v %v", ok, err)
	}
	if ok, _ := s.StartDrain(ctx, key, "b", time.Minute); ok {
		t.Fatal("b took a lease a holds")
	}
	if ok, _ := s.StartDrain(ctx, key, "a", 200*time.Millisecond); !ok {
		t.Fatal("a could not renew its own lease")
	}
	if _, err := s.Finish(ctx, key, "b"); !errors.Is(err, parking.ErrDrainLost) {
		t.Fatalf("finish by b: %v, want ErrDrainLost", err)
	}
	if err := s.StopDrain(ctx, key, "a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.StartDrain(ctx, key, "b", time.Minute); !ok {
		t.Fatal("b could not take the lease a gave back")
	}
}

func TestRequestReleaseAndStats(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	park(t, s, "e1", "e2")
	if _, err := s.RequestRelease(ctx, parking.Release{Key: key, Action: parking.ActionDiscard, By: "t"}); !errors.Is(err, parking.ErrNoReason) {
		t.Fatalf("discard without reason: %v", err)
	}
	rel, err := s.RequestRelease(ctx, parking.Release{Key: key, Action: parking.ActionReplay, By: "alice"})
	if err != nil || rel.Head.State != parking.Replaying || rel.Trigger == nil || rel.Trigger.EventID != "head" {
		t.Fatalf("replay: %+v %v", rel, err)
	}
	if m := rel.Trigger.Message(key); m.OrderingKey != key.OrderingKey || m.Attributes["ce-id"] != "head" {
		t.Fatalf("trigger message %+v", m)
	}
	// A lost trigger: asking again hands it out again.
	if err := s.HeadResolved(ctx, key); err != nil {
		t.Fatal(err)
	}
	rel, err = s.RequestRelease(ctx, parking.Release{Key: key, Action: parking.ActionDiscard, By: "bob", Reason: "stuck"})
	if err != nil || rel.Head.State != parking.Draining || rel.Trigger == nil || rel.Trigger.EventID != "e1" {
		t.Fatalf("again while draining: %+v %v", rel, err)
	}
	var audits int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM parked_releases`).Scan(&audits); err != nil || audits != 2 {
		t.Fatalf("audit rows %d %v", audits, err)
	}
	if _, err := s.RequestRelease(ctx, parking.Release{Key: parking.Key{Subscription: "x", OrderingKey: "y"}, Action: parking.ActionReplay}); !errors.Is(err, parking.ErrNotParked) {
		t.Fatalf("unknown key: %v", err)
	}

	other := parking.Key{Subscription: key.Subscription, OrderingKey: "order-2"}
	if err := s.Park(ctx, parking.Head{Key: other, Consumer: "payment", Topic: "order.created", Head: event("h2"), DeadLetterID: "dl-2", Reason: "bad"}); err != nil {
		t.Fatal(err)
	}
	stats, err := s.Stats(ctx)
	if err != nil || len(stats) != 1 || stats[0].Keys != 2 || stats[0].Events != 2 || stats[0].Consumer != "payment" || stats[0].OldestAge < 0 {
		t.Fatalf("stats %+v %v", stats, err)
	}
	heads, err := s.List(ctx, parking.Filter{Consumer: "payment"})
	if err != nil || len(heads) != 2 || heads[0].OrderingKey != "order-1" {
		t.Fatalf("list %+v %v", heads, err)
	}
}
