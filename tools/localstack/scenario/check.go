package scenario

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/manifest"
	"example.com/platform/tools/localstack/dispatch"
)

// Names of the invariants Check verifies, in the order it reports them.
const (
	InvShipped      = "every approved order shipped exactly once"
	InvDeclined     = "the declined order is payment_failed and never paid or shipped"
	InvNotLost      = "no order lost"
	InvCharged      = "each order charged exactly once at the gateway"
	InvPayments     = "one payment row per order"
	InvHistory      = "per-order history moves forward, never shipped before paid"
	InvAnalytics    = "analytics has one row per domain event"
	InvPoison       = "the poison message (and nothing else) is dead-lettered, with its reason"
	InvOutbox       = "no pending outbox rows"
	InvAcknowledged = "every message acknowledged or dead-lettered"
	InvParked       = "the parked order's cancel waited for its created: payment applied created, then cancelled, once each; no key left parked"
)

// Invariant is one checked property and what violated it.
type Invariant struct {
	Name       string
	Violations []string
}

// OK reports whether the invariant holds.
func (i Invariant) OK() bool { return len(i.Violations) == 0 }

// DeadLetterLine is one dead-letter archive entry, for the table.
type DeadLetterLine struct {
	Subscription, EventID, Type, ReasonClass, Reason string
	// Attempts is the delivery attempt of the first copy.
	Attempts int64
	// Copies is the number of archive entries of this event from this
	// subscription (more than one after duplicate deliveries).
	Copies int
}

// Report is the outcome of a run: the counts of the summary line (see
// Line and docs/demo.md for their meaning), the table data and every
// invariant with its violations.
type Report struct {
	// Orders is the number of messages sent: orders through the API plus
	// the poison message.
	Orders int
	// APIOrders were accepted by the orders API.
	APIOrders int
	// Paid orders have "paid" in their history; Declined ones ended
	// payment_failed; Shipped ones are shipped.
	Paid, Declined, Shipped int
	// AnalyticsRows is the number of analytics rows about the batch (its
	// orders' events and the poison message); ExpectedAnalyticsRows what it
	// should be: one per domain event.
	AnalyticsRows, ExpectedAnalyticsRows int
	// DeadLettered is the number of distinct events in the dead-letter
	// archive (per subscription; copies of one event count once).
	DeadLettered int
	// Lost counts API orders that did not reach their expected terminal
	// status, plus the poison message when it is not in the archive.
	Lost int
	// Cancelled API orders ended cancelled (the parked order).
	Cancelled int
	// Parked counts the batch's ordering keys payment parked behind a dead
	// letter (released since or not).
	Parked int
	// OutOfOrder counts orders whose order.cancelled payment applied
	// before their order.created (or without it).
	OutOfOrder int
	// DuplicatedEffects counts every effect beyond the first: extra gateway
	// charges, payment rows, shipments, analytics rows of one event, repeated
	// statuses in an order's history.
	DuplicatedEffects int
	// StatusCounts counts the API orders per final status ("missing" for
	// an order that is not stored).
	StatusCounts map[string]int
	Topics       []TopicCount
	Subs         []dispatch.Stats
	DeadLetters  []DeadLetterLine
	Invariants   []Invariant
	// Violations lists every violation, prefixed with its invariant.
	Violations []string
	// SettleErr is set when the system did not settle in time.
	SettleErr string
}

// OK reports whether every invariant holds.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Line is the stable last line of `make demo`:
//
//	demo: orders=20 paid=17 declined=1 cancelled=1 shipped=17 analytics_rows=56 dead_lettered=2 parked=2 out_of_order=0 lost=0 duplicated_effects=0
func (r *Report) Line() string {
	return fmt.Sprintf("demo: orders=%d paid=%d declined=%d cancelled=%d shipped=%d analytics_rows=%d dead_lettered=%d parked=%d out_of_order=%d lost=%d duplicated_effects=%d",
		r.Orders, r.Paid, r.Declined, r.Cancelled, r.Shipped, r.AnalyticsRows, r.DeadLettered, r.Parked, r.OutOfOrder, r.Lost, r.DuplicatedEffects)
}

// Invariant returns the named invariant (zero Invariant when unknown).
func (r *Report) Invariant(name string) Invariant {
	for _, inv := range r.Invariants {
		if inv.Name == name {
			return inv
		}
	}
	return Invariant{}
}

// Event types of the flow.
var (
	typeCreated   = domain.OrderCreated{}.EventType()
	typeProcessed = domain.PaymentProcessed{}.EventType()
	typeFailed    = domain.PaymentFailed{}.EventType()
	typeShipped   = domain.ShipmentDispatched{}.EventType()
	typeCancelled = domain.OrderCancelled{}.EventType()
)

// PoisonSubscription is the subscription that dead-letters the poison
// message: the payment function's on order.created.
var PoisonSubscription = manifest.SubscriptionID(Payment, TopicCreated)

// Check judges what happened to a batch. It is a pure function of its
// arguments.
func Check(b *Batch, o *Observed) *Report {
	r := &Report{Orders: len(b.Items), StatusCounts: map[string]int{}, Topics: o.Topics, Subs: o.Subscriptions}
	inv := map[string]*Invariant{}
	for _, name := range []string{InvShipped, InvDeclined, InvNotLost, InvCharged, InvPayments, InvHistory, InvAnalytics, InvPoison, InvParked, InvOutbox, InvAcknowledged} {
		r.Invariants = append(r.Invariants, Invariant{Name: name})
	}
	for i := range r.Invariants {
		inv[r.Invariants[i].Name] = &r.Invariants[i]
	}
	fail := func(name, format string, args ...any) {
		inv[name].Violations = append(inv[name].Violations, fmt.Sprintf(format, args...))
	}

	// Analytics rows by order id and type, and duplicates by event id.
	byOrder := map[string]map[string]int{}
	seen := map[string]int{}
	relevant := map[string]bool{}
	poison := b.Poison()
	for _, it := range b.Items {
		if it.OrderID != "" {
			relevant[it.OrderID] = true
		}
	}
	for _, row := range o.Analytics {
		if !relevant[row.OrderID] && row.EventID != poison.EventID {
			continue
		}
		r.AnalyticsRows++
		seen[row.EventID]++
		if byOrder[row.OrderID] == nil {
			byOrder[row.OrderID] = map[string]int{}
		}
		byOrder[row.OrderID][row.Type]++
	}
	for id, n := range seen {
		if n > 1 {
			r.DuplicatedEffects += n - 1
			fail(InvAnalytics, "event %s has %d rows", id, n)
		}
	}
	expectRows := func(orderID string, want map[string]int) {
		got := byOrder[orderID]
		for _, t := range slices.Sorted(maps.Keys(union(got, want))) {
			g, w := got[t], want[t]
			if g < w {
				fail(InvAnalytics, "order %s: %d %s rows, want %d", orderID, g, t, w)
			} else if g > w && w == 0 {
				fail(InvAnalytics, "order %s: unexpected %d %s rows", orderID, g, t)
			}
		}
	}

	for _, it := range b.Items {
		if it.Kind == KindPoison {
			continue
		}
		if it.OrderID == "" {
			// Not sent (or the API never answered): nothing to check.
			continue
		}
		r.APIOrders++
		st, found := o.Orders[it.OrderID]
		status := string(st.Status)
		if !found {
			status = "missing"
		}
		r.StatusCounts[status]++
		has := func(s orders.Status) bool { return slices.Contains(st.History, s) }
		if has(orders.Paid) {
			r.Paid++
		}
		if st.Status == orders.PaymentFailed {
			r.Declined++
		}
		if st.Status == orders.Shipped {
			r.Shipped++
		}
		ships, pays, charges := o.Shipments[it.OrderID], o.Payments[it.OrderID], o.Charges[it.OrderID]
		r.DuplicatedEffects += extra(ships) + extra(pays) + extra(len(charges))
		r.DuplicatedEffects += Repeats(st.History)

		want := map[Kind]orders.Status{KindOrder: orders.Shipped, KindDeclined: orders.PaymentFailed, KindParked: orders.Cancelled}[it.Kind]
		if st.Status == orders.Cancelled {
			r.Cancelled++
		}
		if !found || st.Status != want {
			r.Lost++
			fail(InvNotLost, "order %s (%s) is %s, want %s", it.OrderID, it.Kind, status, want)
		}
		wantCharges := map[Kind][]string{KindOrder: {"approved"}, KindDeclined: {"declined"}, KindParked: nil}[it.Kind]
		if !slices.Equal(charges, wantCharges) {
			fail(InvCharged, "order %s (%s): gateway charges %v, want %v", it.OrderID, it.Kind, charges, wantCharges)
		}
		if wantPays := len(wantCharges); pays != wantPays {
			fail(InvPayments, "order %s: %d payment rows, want %d", it.OrderID, pays, wantPays)
		}
		if found {
			checkHistory(it.OrderID, st.History, func(f string, a ...any) { fail(InvHistory, f, a...) })
		}
		switch it.Kind {
		case KindOrder:
			if st.Status != orders.Shipped || ships != 1 {
				fail(InvShipped, "order %s: status %s, %d shipments, want shipped with 1", it.OrderID, status, ships)
			}
			expectRows(it.OrderID, map[string]int{typeCreated: 1, typeProcessed: 1, typeShipped: 1})
		case KindDeclined:
			if st.Status != orders.PaymentFailed || ships != 0 || has(orders.Paid) || has(orders.Shipped) {
				fail(InvDeclined, "order %s: status %s, history %v, %d shipments", it.OrderID, status, st.History, ships)
			}
			expectRows(it.OrderID, map[string]int{typeCreated: 1, typeFailed: 1})
		case KindParked:
			if ships != 0 || has(orders.Paid) || has(orders.Shipped) {
				fail(InvParked, "order %s: history %v, %d shipments: a cancelled order is never paid or shipped", it.OrderID, st.History, ships)
			}
			expectRows(it.OrderID, map[string]int{typeCreated: 1, typeCancelled: 1})
		}
	}
	r.ExpectedAnalyticsRows = r.APIOrders + r.Paid + r.Declined + r.Shipped + r.Cancelled
	checkParked(b, o, r, func(f string, a ...any) { fail(InvParked, f, a...) })

	// The poison message: in the archive once, with its reason, and no
	// effect anywhere else.
	if poison.Sent {
		r.ExpectedAnalyticsRows++
		expectRows(poison.OrderID, map[string]int{typeCreated: 1})
		if _, ok := o.Orders[poison.OrderID]; ok {
			fail(InvPoison, "an order %s exists for the poison message", poison.OrderID)
		}
		if n := o.Shipments[poison.OrderID] + o.Payments[poison.OrderID] + len(o.Charges[poison.OrderID]); n > 0 {
			fail(InvPoison, "the poison message's order %s has %d payments, charges or shipments", poison.OrderID, n)
		}
	}
	// Dead letters count once per (subscription, event): a message that
	// fails permanently is dead-lettered once per delivery, so a duplicate
	// delivery archives a second copy of the same event. That copy is not
	// an effect: dead-lettered events stay replayable (their idempotency
	// record is released), and a replay of either copy is one event.
	archived := 0
	index := map[string]int{}
	parkedOrders := map[string]bool{}
	for _, it := range b.Items {
		if it.Kind == KindParked && it.Sent && it.OrderID != "" {
			parkedOrders[it.OrderID] = true
		}
	}
	for _, e := range o.DeadLetters {
		class, msg := e.Reason()
		key := e.SourceSubscription() + "\x00" + e.EventID()
		if e.EventID() == "" {
			key += e.MessageID
		}
		if i, ok := index[key]; ok {
			r.DeadLetters[i].Copies++
			continue
		}
		index[key] = len(r.DeadLetters)
		r.DeadLetters = append(r.DeadLetters, DeadLetterLine{Subscription: e.SourceSubscription(), EventID: e.EventID(), Type: e.Type(),
			ReasonClass: class, Reason: msg, Attempts: e.Attempts(), Copies: 1})
		if e.Type() == typeCreated && parkedOrders[deadletter.Lookup(e.Attributes, "ce-subject")] {
			// A parked order's created, refused by the gateway: its
			// dead letter parks the key (checkParked).
			if e.SourceSubscription() != PoisonSubscription || !strings.Contains(msg, fmt.Sprint(RefusedStatus)) {
				fail(InvParked, "the parked order's created was dead-lettered by %s (%s: %s), want %s refusing it with %d", e.SourceSubscription(), class, msg, PoisonSubscription, RefusedStatus)
			}
			continue
		}
		if poison.Sent && e.EventID() == poison.EventID {
			archived++
			if e.SourceSubscription() != PoisonSubscription {
				fail(InvPoison, "the poison message was dead-lettered by %s, want %s", e.SourceSubscription(), PoisonSubscription)
			}
			if class == "" || strings.TrimSpace(msg) == "" {
				fail(InvPoison, "the poison message's archive entry %s has no reason (class %q, message %q)", e.MessageID, class, msg)
			}
			continue
		}
		fail(InvPoison, "unexpected dead letter %s from %s (%s): %s", e.EventID(), e.SourceSubscription(), class, msg)
	}
	r.DeadLettered = len(r.DeadLetters)
	if poison.Sent && archived == 0 {
		r.Lost++
		fail(InvPoison, "the poison message %s is not in the dead-letter archive", poison.EventID)
		fail(InvNotLost, "the poison message %s is not in the dead-letter archive", poison.EventID)
	}
	if r.AnalyticsRows != r.ExpectedAnalyticsRows {
		fail(InvAnalytics, "%d rows, want %d (one per domain event)", r.AnalyticsRows, r.ExpectedAnalyticsRows)
	}
	if o.OutboxPending != 0 {
		fail(InvOutbox, "%d outbox rows pending", o.OutboxPending)
	}
	for _, s := range o.Subscriptions {
		if s.InFlight != 0 || s.Unacked > 0 {
			fail(InvAcknowledged, "subscription %s: %d in flight, %d unacknowledged", s.Subscription, s.InFlight, s.Unacked)
		}
	}
	for _, i := range r.Invariants {
		for _, v := range i.Violations {
			r.Violations = append(r.Violations, i.Name+": "+v)
		}
	}
	return r
}

// checkParked counts the parked keys and the orders payment applied out
// of order, and reports a parked key of the batch that is still parked or
// was never parked, and an order whose cancel payment applied before its
// created or more than once.
func checkParked(b *Batch, o *Observed, r *Report, fail func(string, ...any)) {
	for _, it := range b.Items {
		k, parked := o.Parked[it.OrderID]
		if !parked {
			if (it.Kind == KindParked || it.Kind == KindPoison) && it.Sent {
				fail("%s %s: its key was never parked", it.Kind, it.OrderID)
			}
			continue
		}
		r.Parked++
		if k.StillParked {
			fail("%s %s: its key is still parked (releases asked for: %v)", it.Kind, it.OrderID, k.Actions)
		}
	}
	for order, p := range o.PaymentApplied {
		switch {
		case p.Cancelled.IsZero():
			fail("order %s: payment never applied its cancel", order)
		case p.Created.IsZero() || p.Cancelled.Before(p.Created):
			r.OutOfOrder++
			fail("order %s: payment applied its cancel (%s) before its created (%s)", order, p.Cancelled.Format(time.RFC3339Nano), p.Created.Format(time.RFC3339Nano))
		}
	}
	for _, it := range b.Items {
		if _, ok := o.PaymentApplied[it.OrderID]; it.Kind == KindParked && it.Sent && it.OrderID != "" && !ok {
			fail("order %s: no order.cancelled event reached analytics", it.OrderID)
		}
	}
}

// checkHistory reports a history that does not start pending, repeats a
// status, makes a move the status machine forbids or ships before paying.
func checkHistory(id string, h []orders.Status, fail func(string, ...any)) {
	if len(h) == 0 || h[0] != orders.Pending {
		fail("order %s: history %v does not start pending", id, h)
		return
	}
	paid := false
	for i, s := range h {
		if s == orders.Paid {
			paid = true
		}
		if s == orders.Shipped && !paid {
			fail("order %s: shipped before paid: %v", id, h)
		}
		if i > 0 && !orders.CanMove(h[i-1], s) {
			fail("order %s: illegal move %s -> %s in %v", id, h[i-1], s, h)
		}
	}
}

// Repeats counts history entries that repeat an earlier status.
func Repeats(h []orders.Status) int {
	seen := map[orders.Status]bool{}
	n := 0
	for _, s := range h {
		if seen[s] {
			n++
		}
		seen[s] = true
	}
	return n
}

func extra(n int) int { return max(n-1, 0) }

func union(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for k := range a {
		out[k] = 0
	}
	for k := range b {
		out[k] = 0
	}
	return out
}

// WriteTable prints what happened: orders per status, messages per topic,
// deliveries per subscription, dead letters with their reasons and every
// invariant, followed by the summary line (Line) as the last line.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nOrders: %d sent (%d through the orders API, %d poison message)\n", r.Orders, r.APIOrders, r.Orders-r.APIOrders)
	fmt.Fprintln(tw, "  status\torders")
	for _, s := range slices.Sorted(maps.Keys(r.StatusCounts)) {
		fmt.Fprintf(tw, "  %s\t%d\n", s, r.StatusCounts[s])
	}
	fmt.Fprintln(tw, "\nMessages per topic")
	fmt.Fprintln(tw, "  topic\tpublished")
	for _, t := range r.Topics {
		fmt.Fprintf(tw, "  %s\t%d\n", t.Topic, t.Published)
	}
	fmt.Fprintln(tw, "\nDeliveries per subscription")
	fmt.Fprintln(tw, "  subscription\tpulled\tpushes\tacked\tdlq after max attempts\tfailed pushes")
	subs := append([]dispatch.Stats(nil), r.Subs...)
	sort.Slice(subs, func(i, j int) bool { return subs[i].Subscription < subs[j].Subscription })
	for _, s := range subs {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\n", s.Subscription, s.Pulled, s.Pushes, s.Acked, s.DeadLettered, s.Failures)
	}
	entries := 0
	for _, d := range r.DeadLetters {
		entries += d.Copies
	}
	fmt.Fprintf(tw, "\nDead letters: %d events (%d archive entries)\n", len(r.DeadLetters), entries)
	if len(r.DeadLetters) > 0 {
		fmt.Fprintln(tw, "  subscription\tevent\tattempts\tcopies\treason")
		for _, d := range r.DeadLetters {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s: %s\n", d.Subscription, d.EventID, d.Attempts, d.Copies, d.ReasonClass, oneLine(d.Reason, 100))
		}
	}
	fmt.Fprintf(tw, "\nParked keys: %d (payment on order.created), cancels applied before their created: %d\n", r.Parked, r.OutOfOrder)
	fmt.Fprintln(tw, "\nInvariants")
	for _, i := range r.Invariants {
		mark := "ok  "
		if !i.OK() {
			mark = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", mark, i.Name)
		for _, v := range i.Violations {
			fmt.Fprintf(tw, "  \t  - %s\n", v)
		}
	}
	fmt.Fprintln(tw)
	tw.Flush()
	fmt.Fprintln(w, r.Line())
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}
