// Package e2e_test runs the whole system on one machine (the local stack of
// tools/localstack/stack: pstest, PostgreSQL, every function and the fake
// payment gateway as separate processes, the push dispatcher) and checks
// the demo flow's invariants (tools/localstack/scenario) under normal
// delivery, duplicate delivery and function processes killed mid-run.
//
// Each test starts its own stack (three in all, about 10s each once the
// function binaries are in the Go build cache). The functions are built
// without -race whatever the test binary's flags; the dispatcher and the
// checks run in the test binary.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"example.com/platform/shared/app"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/testing/logbuf"
	"example.com/platform/tools/localstack/dispatch"
	"example.com/platform/tools/localstack/scenario"
	"example.com/platform/tools/localstack/stack"
)

// backoffScale shortens the manifests' retry backoff (10s..600s) 100x for
// the normal and duplicate runs, where nothing is expected to fail.
const backoffScale = 0.01

// killLease is the payment function's idempotency lease in the
// kill/restart run (IDEMPOTENCY_LEASE; production keeps the 2-minute
// default of shared/app.LeaseDuration). A payment killed mid-charge leaves
// its lease held, and redeliveries answer 503 until it expires.
const killLease = "3s"

// killBackoffScale is the kill/restart run's backoff scale. With the
// payment subscription's 10 attempts and 10s..600s backoff, scale 0.05
// waits 0.5+1+2+4+8+16+30+30+30 s in all, well beyond killLease, so a
// message is retried past the lease's expiry instead of being
// dead-lettered.
const killBackoffScale = 0.05

// start starts a stack for t, stopped (and checked to have stopped) when t
// ends; the tail of its log is printed when t failed, the whole log is
// streamed to stderr when E2E_STACK_LOG is set.
func start(t *testing.T, opts stack.Options) *stack.Stack {
	t.Helper()
	logs := &logbuf.Buffer{}
	opts.Log = logs
	if os.Getenv("E2E_STACK_LOG") != "" {
		opts.Log = io.MultiWriter(logs, os.Stderr) // stream every process's log
	}
	opts.NoBigQueryEmulator = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	s, err := stack.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start stack: %v\n%s", err, logs.Tail(200))
	}
	t.Logf("stack up in %s", time.Since(began).Round(100*time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stack log (tail):\n%s", logs.Tail(300))
		}
		names := s.Names()
		if err := s.Stop(); err != nil {
			t.Errorf("stop stack: %v", err)
		}
		for _, n := range names {
			if s.Running(n) {
				t.Errorf("%s still running after Stop", n)
			}
		}
	})
	return s
}

func runner(t *testing.T, s *stack.Stack, n int) *scenario.Runner {
	t.Helper()
	r, err := scenario.New(context.Background(), s, scenario.Config{Orders: n, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// requireOK fails t with the report's table when an invariant is violated.
func requireOK(t *testing.T, rep *scenario.Report) {
	t.Helper()
	var buf bytes.Buffer
	rep.WriteTable(&buf)
	if !rep.OK() {
		t.Fatalf("invariants violated:\n%s", buf.String())
	}
	t.Logf("report:\n%s", buf.String())
}

// history asserts, straight from the orders tables, that no order of the
// batch was shipped before it was paid and that the declined one never
// was.
func checkHistories(t *testing.T, r *scenario.Runner, b *scenario.Batch) {
	t.Helper()
	for _, it := range b.Orders() {
		h, err := orders.History(context.Background(), r.DB(), it.OrderID)
		if err != nil {
			t.Fatalf("history of %s: %v", it.OrderID, err)
		}
		want := map[scenario.Kind][]orders.Status{
			scenario.KindOrder:    {orders.Pending, orders.Paid, orders.Shipped},
			scenario.KindDeclined: {orders.Pending, orders.PaymentFailed},
			scenario.KindParked:   {orders.Pending, orders.Cancelled},
		}[it.Kind]
		if !slices.Equal(h, want) {
			t.Errorf("order %s (%s): history %v, want %v", it.OrderID, it.Kind, h, want)
		}
	}
}

// eventctl runs the operator CLI in process against r's stack
// (scenario.Runner.Eventctl: the environment a client of the stack gets)
// and returns its output; a non-zero exit fails t.
func eventctl(t *testing.T, r *scenario.Runner, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.Eventctl(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The demo flow: 19 orders through the API (one declined, one parked and
// cancelled), one poison message; every invariant holds, the summary line
// has the documented counts, and the operator CLI sees the dead letters,
// no parked key left and an empty outbox.
func TestOrdersFlowEndToEnd(t *testing.T) {
	s := start(t, stack.Options{BackoffScale: backoffScale})
	r := runner(t, s, scenario.DefaultOrders)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	b := r.NewBatch()
	if err := r.Send(ctx, b); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Finish(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	requireOK(t, rep)
	const want = "demo: orders=20 paid=17 declined=1 cancelled=1 shipped=17 analytics_rows=56 dead_lettered=2 parked=2 out_of_order=0 lost=0 duplicated_effects=0"
	if got := rep.Line(); got != want {
		t.Errorf("summary line\n got %s\nwant %s", got, want)
	}
	checkHistories(t, r, b)

	// The poison message is in the archive with its reason ...
	poison := b.Poison()
	if len(rep.DeadLetters) != 2 {
		t.Fatalf("dead letters %+v", rep.DeadLetters)
	}
	var dl scenario.DeadLetterLine
	for _, d := range rep.DeadLetters {
		if d.EventID == poison.EventID {
			dl = d
		}
	}
	if dl.EventID != poison.EventID || dl.Subscription != scenario.PoisonSubscription || dl.ReasonClass != "permanent" ||
		!strings.Contains(dl.Reason, poison.OrderID) || !strings.Contains(dl.Reason, "not found") {
		t.Errorf("poison dead letter %+v, want event %s from %s, permanent, order %s not found", dl, poison.EventID, scenario.PoisonSubscription, poison.OrderID)
	}

	// ... and the operator CLI shows it, with the same archive file.
	list := eventctl(t, r, "dlq", "list", "--archive", "jsonl:"+s.SinkFiles[scenario.DeadLetter])
	for _, w := range []string{poison.EventID, scenario.PoisonSubscription, "not found"} {
		if !strings.Contains(list, w) {
			t.Errorf("eventctl dlq list lacks %q:\n%s", w, list)
		}
	}
	var listed struct {
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal([]byte(eventctl(t, r, "dlq", "list", "--json", "--archive", "jsonl:"+s.SinkFiles[scenario.DeadLetter])), &listed); err != nil {
		t.Fatalf("eventctl dlq list --json: %v", err)
	}
	if len(listed.Entries) != 2 {
		t.Errorf("eventctl dlq list --json: %d entries, want 2: %v", len(listed.Entries), listed.Entries)
	}
	if parked := eventctl(t, r, "parked", "list"); !strings.Contains(parked, "no parked keys") {
		t.Errorf("eventctl parked list after the demo:\n%s", parked)
	}
	status := eventctl(t, r, "outbox", "status")
	if !strings.Contains(status, "nothing pending") {
		t.Errorf("eventctl outbox status:\n%s", status)
	}
}

// With every message delivered twice, every effect still happens once.
func TestDuplicateDeliveryHasNoDuplicateEffects(t *testing.T) {
	s := start(t, stack.Options{BackoffScale: backoffScale, Duplicate: true})
	r := runner(t, s, scenario.DefaultOrders)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	requireOK(t, rep)
	if rep.Paid != 17 || rep.Shipped != 17 || rep.Declined != 1 || rep.DuplicatedEffects != 0 || rep.DeadLettered != 2 || rep.Parked != 2 || rep.OutOfOrder != 0 {
		t.Errorf("summary %s", rep.Line())
	}
	// The duplicates really were delivered: two pushes per message.
	for _, st := range rep.Subs {
		if st.Pulled > 0 && st.Pushes != 2*st.Pulled {
			t.Errorf("%s: %d pushes for %d messages, want two each", st.Subscription, st.Pushes, st.Pulled)
		}
	}
	// 19 orders' created, the poison message, the parked order's cancel
	// and the replay of its created.
	if sub := find(rep.Subs, scenario.PoisonSubscription); sub.Pulled != 22 {
		t.Errorf("%s pulled %d messages, want 22", scenario.PoisonSubscription, sub.Pulled)
	}
}

func find(stats []dispatch.Stats, id string) dispatch.Stats {
	for _, s := range stats {
		if s.Subscription == id {
			return s
		}
	}
	return dispatch.Stats{}
}

// signal is a one-slot, non-blocking notification.
type signal chan struct{}

func (s signal) fire() {
	select {
	case s <- struct{}{}:
	default:
	}
}

func wait(t *testing.T, ctx context.Context, s signal, what string) {
	t.Helper()
	select {
	case <-s:
	case <-ctx.Done():
		t.Fatalf("waiting for %s: %v", what, ctx.Err())
	}
}

// The payment and shipment processes are killed while orders flow and
// restarted: nothing is lost, nothing is charged or shipped twice.
//
// Payment is killed mid-charge, deterministically: the gateway charges the
// first order and then hangs (its answer is lost), and the test kills
// payment once the charge is recorded at the gateway. The killed instance
// leaves its idempotency lease held (killLease): the redelivered message
// answers 503 and is retried with backoff until the lease expires (see
// killBackoffScale), then the new instance charges again with the same
// idempotency key and the gateway replays the first charge instead of
// taking a second one.
func TestKilledFunctionsLoseNothing(t *testing.T) {
	paymentDown, shipmentDown := make(signal, 1), make(signal, 1)
	s := start(t, stack.Options{BackoffScale: killBackoffScale, Env: map[string]map[string]string{
		scenario.Payment: {app.EnvLease: killLease},
	}, Observer: func(ev dispatch.Event) {
		if ev.Outcome != dispatch.OutcomeRetry || ev.Status != 0 { // no answer: connection refused or reset
			return
		}
		switch ev.Consumer {
		case scenario.Payment:
			paymentDown.fire()
		case scenario.Shipment:
			shipmentDown.fire()
		}
	}})
	r := runner(t, s, scenario.DefaultOrders)
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	b := r.NewBatch()
	half := b.Len() / 2
	first := b.Items[0]
	if first.Kind != scenario.KindOrder {
		t.Fatalf("first item is %s", first.Kind)
	}
	if err := r.Gateway(ctx, http.MethodPut, "/_fake/behavior",
		map[string]any{"scope": "customer", "id": first.CustomerID, "mode": "approve_then_hang", "times": 1}, nil); err != nil {
		t.Fatal(err)
	}

	// First half flows; payment dies while the first order's charge is
	// taken but unanswered, with other orders in flight.
	if err := r.SendRange(ctx, b, 0, half); err != nil {
		t.Fatal(err)
	}
	firstID := b.Items[0].OrderID
	waitFor(t, ctx, "the first order's charge at the gateway", func() bool {
		var charges []struct {
			OrderID string `json:"order_id"`
		}
		if err := r.Gateway(ctx, http.MethodGet, "/_fake/charges", nil, &charges); err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(charges, func(c struct {
			OrderID string `json:"order_id"`
		}) bool {
			return c.OrderID == firstID
		})
	})
	if err := s.Kill(scenario.Payment); err != nil {
		t.Fatal(err)
	}
	// The second half arrives while payment is down; shipment dies while
	// it may still be shipping the first half.
	if err := r.SendRange(ctx, b, half, b.Len()); err != nil {
		t.Fatal(err)
	}
	wait(t, ctx, paymentDown, "a failed push to the killed payment function")
	if err := s.Kill(scenario.Shipment); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx, scenario.Payment); err != nil {
		t.Fatal(err)
	}
	wait(t, ctx, shipmentDown, "a failed push to the killed shipment function")
	if err := s.Restart(ctx, scenario.Shipment); err != nil {
		t.Fatal(err)
	}

	settling := time.Now()
	rep, err := r.Finish(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("settled %s after the restarts", time.Since(settling).Round(100*time.Millisecond))
	requireOK(t, rep)
	if rep.Lost != 0 || rep.DuplicatedEffects != 0 || rep.Shipped != 17 || rep.Declined != 1 || rep.OutOfOrder != 0 {
		t.Errorf("summary %s", rep.Line())
	}
	checkHistories(t, r, b)
	for _, sub := range []string{scenario.PoisonSubscription, "shipment--payment.processed"} {
		if st := find(rep.Subs, sub); st.Failures == 0 {
			t.Errorf("%s: no failed push; the kill did not happen mid-run", sub)
		}
	}
	// The first order was charged once; its later request was a replay.
	var stats struct {
		Replayed int `json:"replayed"`
		Keys     map[string]struct {
			Requests int `json:"requests"`
			Charges  int `json:"charges"`
		} `json:"keys"`
	}
	if err := r.Gateway(ctx, http.MethodGet, "/_fake/stats", nil, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Replayed == 0 {
		t.Errorf("gateway replayed no charge: the killed charge was not retried with its key: %+v", stats)
	}
	for key, k := range stats.Keys {
		if k.Charges > 1 {
			t.Errorf("key %s charged %d times", key, k.Charges)
		}
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
