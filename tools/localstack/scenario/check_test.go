package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"example.com/platform/shared/domain/orders"
	"example.com/platform/tools/localstack/dispatch"
	"example.com/platform/tools/ops/dlq"
)

var t0 = time.Date(2030, 1, 1, 10, 0, 0, 0, time.UTC)

// sentBatch is a batch of n items as if every item had been sent.
func sentBatch(n int) *Batch {
	b := NewBatch(n)
	for i := range b.Items {
		it := &b.Items[i]
		if it.Kind != KindPoison {
			it.OrderID = fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
		}
		it.Sent = true
	}
	return b
}

// perfect is what a correct system leaves behind for b.
func perfect(b *Batch) *Observed {
	o := &Observed{Orders: map[string]OrderState{}, Shipments: map[string]int{}, Payments: map[string]int{}, Charges: map[string][]string{},
		Parked: map[string]ParkedKey{}, PaymentApplied: map[string]AppliedPair{}}
	ev := 0
	row := func(typ, order string) {
		ev++
		o.Analytics = append(o.Analytics, AnalyticsRow{EventID: fmt.Sprintf("ev-%d", ev), Type: typ, OrderID: order})
	}
	for _, it := range b.Items {
		switch it.Kind {
		case KindOrder:
			o.Orders[it.OrderID] = OrderState{Status: orders.Shipped, History: []orders.Status{orders.Pending, orders.Paid, orders.Shipped}}
			o.Shipments[it.OrderID] = 1
			o.Payments[it.OrderID] = 1
			o.Charges[it.OrderID] = []string{"approved"}
			row(typeCreated, it.OrderID)
			row(typeProcessed, it.OrderID)
			row(typeShipped, it.OrderID)
		case KindDeclined:
			o.Orders[it.OrderID] = OrderState{Status: orders.PaymentFailed, History: []orders.Status{orders.Pending, orders.PaymentFailed}}
			o.Payments[it.OrderID] = 1
			o.Charges[it.OrderID] = []string{"declined"}
			row(typeCreated, it.OrderID)
			row(typeFailed, it.OrderID)
		case KindParked:
			o.Orders[it.OrderID] = OrderState{Status: orders.Cancelled, History: []orders.Status{orders.Pending, orders.Cancelled}}
			row(typeCreated, it.OrderID)
			created := o.Analytics[len(o.Analytics)-1].EventID
			row(typeCancelled, it.OrderID)
			dl := deadLetter("dl-2", created, PoisonSubscription, "permanent", "charge order: payment gateway: unexpected answer (HTTP 400)")
			dl.Attributes["ce-subject"] = it.OrderID
			o.DeadLetters = append(o.DeadLetters, dl)
			o.Parked[it.OrderID] = ParkedKey{Actions: []string{"replay"}}
			o.PaymentApplied[it.OrderID] = AppliedPair{Created: t0, Cancelled: t0.Add(time.Millisecond)}
		case KindPoison:
			o.Analytics = append(o.Analytics, AnalyticsRow{EventID: it.EventID, Type: typeCreated, OrderID: it.OrderID})
			o.DeadLetters = append(o.DeadLetters, deadLetter("dl-1", it.EventID, PoisonSubscription, "permanent", "get order: order not found"))
			o.Parked[it.OrderID] = ParkedKey{Actions: []string{"discard"}}
		}
	}
	o.Subscriptions = []dispatch.Stats{{Subscription: PoisonSubscription, Pulled: int64(len(b.Items)), Acked: int64(len(b.Items)), Published: int64(len(b.Items)), Idle: true}}
	o.Topics = []TopicCount{{Topic: TopicCreated, Published: int64(len(b.Items))}}
	return o
}

func deadLetter(msgID, eventID, sub, class, reason string) dlq.Entry {
	return dlq.Entry{MessageID: msgID, Subscription: sub, ReasonClass: class, ReasonMessage: reason,
		Attributes: map[string]string{"ce-id": eventID, "ce-type": typeCreated}}
}

func TestPerfectRunHoldsEveryInvariant(t *testing.T) {
	b := sentBatch(20)
	r := Check(b, perfect(b))
	if !r.OK() {
		t.Fatalf("violations: %v", r.Violations)
	}
	want := "demo: orders=20 paid=17 declined=1 cancelled=1 shipped=17 analytics_rows=56 dead_lettered=2 parked=2 out_of_order=0 lost=0 duplicated_effects=0"
	if got := r.Line(); got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
	if r.StatusCounts["shipped"] != 17 || r.StatusCounts["payment_failed"] != 1 || r.StatusCounts["cancelled"] != 1 || r.APIOrders != 19 {
		t.Errorf("status counts %v, API orders %d", r.StatusCounts, r.APIOrders)
	}
	var buf bytes.Buffer
	r.WriteTable(&buf)
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if lines[len(lines)-1] != want {
		t.Errorf("last line of the table = %q", lines[len(lines)-1])
	}
	for _, s := range []string{"payment_failed", "order.created", PoisonSubscription, "order not found", "ok    no order lost"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, buf.String())
		}
	}
}

func TestNewBatchShape(t *testing.T) {
	for _, n := range []int{0, 3, 4, 20, 101} {
		b := NewBatch(n)
		kinds := map[Kind]int{}
		for _, it := range b.Items {
			kinds[it.Kind]++
		}
		if b.Len() != max(n, MinOrders) || kinds[KindPoison] != 1 || kinds[KindDeclined] != 1 || kinds[KindParked] != 1 || kinds[KindOrder] != b.Len()-3 {
			t.Errorf("NewBatch(%d): len %d, kinds %v", n, b.Len(), kinds)
		}
		if got := len(b.Orders()); got != b.Len()-1 {
			t.Errorf("NewBatch(%d).Orders() = %d", n, got)
		}
		if p := b.Poison(); p.OrderID == "" || p.EventID == "" {
			t.Errorf("NewBatch(%d) poison %+v", n, p)
		}
	}
	if a, b := NewBatch(3), NewBatch(3); a.RunID == b.RunID || a.Items[0].IdempotencyKey == b.Items[0].IdempotencyKey {
		t.Error("two batches share a run id or idempotency keys")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	for _, c := range []Config{{Orders: 3}, {PollInterval: -1}, {StuckPolls: -1}} {
		if err := c.Validate(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: Validate = %v", c, err)
		}
	}
}

// Every way the system can go wrong makes its invariant fail, and the
// summary counts say so.
func TestViolations(t *testing.T) {
	first := func(b *Batch, k Kind) Item {
		for _, it := range b.Items {
			if it.Kind == k {
				return it
			}
		}
		t.Fatalf("no %s item", k)
		return Item{}
	}
	cases := []struct {
		name    string
		mutate  func(b *Batch, o *Observed)
		inv     string
		lost    int
		dups    int
		contain string
	}{
		{"shipped twice", func(b *Batch, o *Observed) { o.Shipments[first(b, KindOrder).OrderID] = 2 }, InvShipped, 0, 1, "2 shipments"},
		{"never shipped", func(b *Batch, o *Observed) {
			id := first(b, KindOrder).OrderID
			o.Orders[id] = OrderState{Status: orders.Paid, History: []orders.Status{orders.Pending, orders.Paid}}
			delete(o.Shipments, id)
		}, InvNotLost, 1, 0, "is paid, want shipped"},
		{"order missing", func(b *Batch, o *Observed) { delete(o.Orders, first(b, KindOrder).OrderID) }, InvNotLost, 1, 0, "is missing"},
		{"shipped before paid", func(b *Batch, o *Observed) {
			id := first(b, KindOrder).OrderID
			o.Orders[id] = OrderState{Status: orders.Shipped, History: []orders.Status{orders.Pending, orders.Shipped, orders.Paid}}
		}, InvHistory, 0, 0, "shipped before paid"},
		{"status repeated", func(b *Batch, o *Observed) {
			id := first(b, KindOrder).OrderID
			o.Orders[id] = OrderState{Status: orders.Shipped, History: []orders.Status{orders.Pending, orders.Paid, orders.Paid, orders.Shipped}}
		}, InvHistory, 0, 1, "illegal move paid -> paid"},
		{"charged twice", func(b *Batch, o *Observed) {
			id := first(b, KindOrder).OrderID
			o.Charges[id] = append(o.Charges[id], "approved")
		}, InvCharged, 0, 1, "gateway charges [approved approved]"},
		{"declined order shipped", func(b *Batch, o *Observed) {
			id := first(b, KindDeclined).OrderID
			o.Orders[id] = OrderState{Status: orders.Shipped, History: []orders.Status{orders.Pending, orders.Paid, orders.Shipped}}
			o.Shipments[id] = 1
			o.Charges[id] = []string{"approved"}
		}, InvDeclined, 1, 0, "1 shipments"},
		{"two payment rows", func(b *Batch, o *Observed) { o.Payments[first(b, KindOrder).OrderID] = 2 }, InvPayments, 0, 1, "2 payment rows"},
		{"analytics row missing", func(b *Batch, o *Observed) { o.Analytics = o.Analytics[1:] }, InvAnalytics, 0, 0, "13 rows, want 14"},
		{"analytics row twice", func(b *Batch, o *Observed) { o.Analytics = append(o.Analytics, o.Analytics[0]) }, InvAnalytics, 0, 1, "has 2 rows"},
		{"poison not archived", func(b *Batch, o *Observed) { o.DeadLetters = nil }, InvPoison, 1, 0, "not in the dead-letter archive"},
		{"poison without reason", func(b *Batch, o *Observed) {
			o.DeadLetters[0].ReasonMessage = ""
		}, InvPoison, 0, 0, "has no reason"},
		{"poison dead-lettered by another consumer", func(b *Batch, o *Observed) {
			o.DeadLetters[0].Subscription = "analytics--order.created"
		}, InvPoison, 0, 0, "dead-lettered by analytics--order.created"},
		{"unexpected dead letter", func(b *Batch, o *Observed) {
			o.DeadLetters = append(o.DeadLetters, deadLetter("dl-2", "other", "shipment--payment.processed", "permanent", "boom"))
		}, InvPoison, 0, 0, "unexpected dead letter other"},
		{"poison order created", func(b *Batch, o *Observed) {
			o.Orders[b.Poison().OrderID] = OrderState{Status: orders.Pending, History: []orders.Status{orders.Pending}}
		}, InvPoison, 0, 0, "exists for the poison message"},
		{"cancel applied before created", func(b *Batch, o *Observed) {
			o.PaymentApplied[b.Parked().OrderID] = AppliedPair{Created: t0.Add(time.Second), Cancelled: t0}
		}, InvParked, 0, 0, "applied its cancel"},
		{"cancel never applied", func(b *Batch, o *Observed) {
			o.PaymentApplied[b.Parked().OrderID] = AppliedPair{Created: t0}
		}, InvParked, 0, 0, "never applied its cancel"},
		{"key left parked", func(b *Batch, o *Observed) {
			o.Parked[b.Parked().OrderID] = ParkedKey{StillParked: true}
		}, InvParked, 0, 0, "still parked"},
		{"key never parked", func(b *Batch, o *Observed) { delete(o.Parked, b.Parked().OrderID) }, InvParked, 0, 0, "never parked"},
		{"parked order charged", func(b *Batch, o *Observed) {
			o.Charges[b.Parked().OrderID] = []string{"approved"}
		}, InvCharged, 0, 0, "gateway charges [approved], want []"},
		{"outbox pending", func(b *Batch, o *Observed) { o.OutboxPending = 3 }, InvOutbox, 0, 0, "3 outbox rows pending"},
		{"unacknowledged", func(b *Batch, o *Observed) { o.Subscriptions[0].Unacked = 2 }, InvAcknowledged, 0, 0, "2 unacknowledged"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := sentBatch(6)
			o := perfect(b)
			tc.mutate(b, o)
			r := Check(b, o)
			inv := r.Invariant(tc.inv)
			if inv.OK() {
				t.Fatalf("%q holds; violations: %v", tc.inv, r.Violations)
			}
			if !slices.ContainsFunc(inv.Violations, func(v string) bool { return strings.Contains(v, tc.contain) }) {
				t.Errorf("%q violations %v lack %q", tc.inv, inv.Violations, tc.contain)
			}
			if r.Lost != tc.lost || r.DuplicatedEffects != tc.dups {
				t.Errorf("lost=%d duplicated_effects=%d, want %d and %d", r.Lost, r.DuplicatedEffects, tc.lost, tc.dups)
			}
			if r.OK() || !strings.Contains(strings.Join(r.Violations, "\n"), tc.inv+": ") {
				t.Errorf("Violations %v do not name %q", r.Violations, tc.inv)
			}
		})
	}
}

// A duplicate delivery of the poison message archives it twice: one
// dead-lettered event, two copies, no violation.
func TestPoisonCopiesCountOnce(t *testing.T) {
	b := sentBatch(5)
	o := perfect(b)
	p := b.Poison()
	o.DeadLetters = append(o.DeadLetters, deadLetter("dl-2", p.EventID, PoisonSubscription, "permanent", "get order: order not found"))
	r := Check(b, o)
	if !r.OK() {
		t.Fatalf("violations: %v", r.Violations)
	}
	if r.DeadLettered != 2 || len(r.DeadLetters) != 2 || r.DeadLetters[0].Copies != 2 || r.DeadLetters[0].EventID != p.EventID {
		t.Errorf("dead_lettered=%d lines=%+v", r.DeadLettered, r.DeadLetters)
	}
}

// Rows of other runs (a shared database or sink) are not counted.
func TestOtherRunsAreIgnored(t *testing.T) {
	b := sentBatch(5)
	o := perfect(b)
	o.Analytics = append(o.Analytics, AnalyticsRow{EventID: "x", Type: typeCreated, OrderID: "11111111-1111-1111-1111-111111111111"})
	if r := Check(b, o); !r.OK() || r.AnalyticsRows != 3*5-4 {
		t.Errorf("violations %v, analytics rows %d", r.Violations, r.AnalyticsRows)
	}
}
