package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"example.com/platform/shared/app"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/parking"
	"example.com/platform/tools/localstack/dispatch"
	"example.com/platform/tools/localstack/scenario"
	"example.com/platform/tools/localstack/stack"
)

// TestParkedKeys runs two orders through payment's parked-key path in the
// local stack: the gateway refuses both customers' charges (HTTP 400, a
// permanent failure), so payment dead-letters each order.created and
// parks its key; each order is then cancelled, and its order.cancelled
// waits, parked, behind the dead letter. Every replayed message is pushed
// twice at the same time (a concurrent redelivery during the release).
//
//   - Order A: replayed while the gateway still refuses it, its created is
//     dead-lettered a second time and the key stays parked; replayed once
//     the refusal is lifted, payment applies created, then cancelled.
//   - Order B: payment is killed in the middle of the release (after the
//     head, while applying the parked cancel) and restarted; the
//     redelivery of the replay finishes the release once the dead
//     process's drain lease expired.
//
// Both end cancelled, never charged, with payment having applied created
// before cancelled, each once, and no key left parked.
func TestParkedKeys(t *testing.T) {
	var concurrent dispatchCount
	// A payment killed mid-release may leave an idempotency lease behind
	// (its blocked claim commits after the kill): keep it short.
	s := start(t, stack.Options{BackoffScale: killBackoffScale, Env: map[string]map[string]string{
		scenario.Payment: {app.EnvLease: killLease},
	}, Fault: func(p dispatch.Push) dispatch.Fault {
		if p.Subscription == scenario.PoisonSubscription && p.Attributes[handler.AttrReplayID] != "" {
			concurrent.add()
			return dispatch.Fault{Duplicate: true, Concurrent: true}
		}
		return dispatch.Fault{}
	}})
	r := runner(t, s, scenario.MinOrders)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	run := fmt.Sprintf("%d", time.Now().UnixNano())
	b := &scenario.Batch{RunID: run, DeclinedCustomer: "customer-" + run + "-declined", RefusedCustomer: "customer-" + run + "-refused"}
	for _, name := range []string{"a", "b"} {
		b.Items = append(b.Items, scenario.Item{Kind: scenario.KindParked, CustomerID: b.RefusedCustomer, IdempotencyKey: "parked-" + run + "-" + name})
	}
	if err := r.Send(ctx, b); err != nil {
		t.Fatal(err)
	}
	a, bID := b.Items[0].OrderID, b.Items[1].OrderID
	store := parking.New(r.DB())
	for _, id := range []string{a, bID} {
		if err := r.WaitParked(ctx, id, 0); err != nil {
			t.Fatal(err)
		}
	}

	// A: a second dead letter of the same key while it is parked (two, in
	// fact: both concurrent pushes of the replay fail and dead-letter).
	logEventctl(t, r, "parked", "replay", scenario.PoisonSubscription, a)
	waitFor(t, ctx, "the second dead letter of order A's created", func() bool {
		h, _, err := store.Get(ctx, key(a))
		return err == nil && h.DeadLetters >= 2 && h.State == parking.Parked
	})
	for _, id := range []string{a, bID} {
		if err := r.Cancel(ctx, id, "e2e"); err != nil {
			t.Fatal(err)
		}
		if err := r.WaitParked(ctx, id, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Gateway(ctx, http.MethodDelete, "/_fake/behavior?scope=customer&id="+b.RefusedCustomer, nil, nil); err != nil {
		t.Fatal(err)
	}
	logEventctl(t, r, "parked", "replay", scenario.PoisonSubscription, a)
	waitFor(t, ctx, "the release of order A", func() bool { return released(t, ctx, store, a) })

	// B: payment dies in the middle of the release. The test holds, in an
	// open transaction, the idempotency record the parked cancel needs,
	// so payment's release blocks right there.
	h, evs, err := store.Get(ctx, key(bID))
	if err != nil || len(evs) != 1 {
		t.Fatalf("order B parked: %+v %+v %v", h, evs, err)
	}
	tx, err := r.DB().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `INSERT INTO processed_events (consumer, event_key, status, completed_at) VALUES ($1, $2, 'done', now())`,
		scenario.Payment, evs[0].EventKey); err != nil {
		t.Fatal(err)
	}
	logEventctl(t, r, "parked", "replay", scenario.PoisonSubscription, bID)
	waitFor(t, ctx, "payment blocked mid-release of order B", func() bool {
		var blocked bool
		err := r.DB().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM parked_keys WHERE subscription = $1 AND ordering_key = $2 AND state = 'draining')
   AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND usename = 'fn_payment')`, scenario.PoisonSubscription, bID).Scan(&blocked)
		return err == nil && blocked
	})
	if err := s.SigKill(scenario.Payment); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx, scenario.Payment); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the release of order B after the crash", func() bool { return released(t, ctx, store, bID) })

	if err := r.Settle(ctx, b); err != nil {
		t.Fatal(err)
	}
	obs, err := r.Observe(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	rep := scenario.Check(b, obs)
	requireOK(t, rep)
	if rep.Parked != 2 || rep.OutOfOrder != 0 || rep.Cancelled != 2 || rep.DeadLettered != 2 || rep.DuplicatedEffects != 0 {
		t.Errorf("summary %s", rep.Line())
	}
	for _, id := range []string{a, bID} {
		if p := obs.PaymentApplied[id]; p.Created.IsZero() || !p.Created.Before(p.Cancelled) {
			t.Errorf("order %s: payment applied created at %s, cancelled at %s", id, p.Created, p.Cancelled)
		}
	}
	// A's created was dead-lettered again by its replay (the archive has
	// every copy).
	copies := 0
	for _, d := range obs.DeadLetters {
		if d.Type() == "com.example.orders.order.created.v1" && strings.Contains(string(d.Body), a) {
			copies++
		}
	}
	if copies < 2 {
		t.Errorf("order A's created dead-lettered %d times, want at least 2", copies)
	}
	if sub := find(rep.Subs, scenario.PoisonSubscription); sub.Failures == 0 {
		t.Errorf("%s: no failed push: payment was not killed mid-release", sub.Subscription)
	}
	if sub := find(rep.Subs, scenario.PoisonSubscription); sub.Pushes <= sub.Pulled || concurrent.n() < 3 {
		t.Errorf("%s: %d pushes for %d messages, %d replays pushed twice at once: the concurrent redelivery did not happen", sub.Subscription, sub.Pushes, sub.Pulled, concurrent.n())
	}
}

func key(orderID string) parking.Key {
	return parking.Key{Subscription: scenario.PoisonSubscription, OrderingKey: orderID}
}

// released reports whether the key of orderID is no longer parked.
func released(t *testing.T, ctx context.Context, store *parking.Store, orderID string) bool {
	t.Helper()
	_, ok, err := store.Lookup(ctx, key(orderID))
	if err != nil {
		t.Fatal(err)
	}
	return !ok
}

// logEventctl runs eventctl (see eventctl) and logs what it printed.
func logEventctl(t *testing.T, r *scenario.Runner, args ...string) {
	t.Helper()
	t.Logf("eventctl %s: %s", strings.Join(args, " "), strings.TrimSpace(eventctl(t, r, args...)))
}

// dispatchCount counts calls of the fault hook; it is called from the
// dispatcher's goroutines.
type dispatchCount struct{ v atomic.Int64 }

func (c *dispatchCount) add()     { c.v.Add(1) }
func (c *dispatchCount) n() int64 { return c.v.Load() }
