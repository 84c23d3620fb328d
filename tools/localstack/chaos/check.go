package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"example.com/platform/shared/domain/orders"
	"example.com/platform/tools/localstack/scenario"
)

// Report is the outcome of a chaos run.
type Report struct {
	Seed uint64
	// Orders were sent; Accepted got an id from the orders API.
	Orders, Accepted int
	// Paid, Declined and Shipped count accepted orders by outcome;
	// Poisoned those stopped by a poison event that is archived.
	Paid, Declined, Shipped, Poisoned int
	// Faults counts the injected faults by kind (see Kinds).
	Faults map[string]int
	// PublishFaults counts the publish faults per function process (the
	// relay's are the relay path, the others' the after-commit path).
	PublishFaults map[string]map[string]int
	// Plan is the run's timed faults.
	Plan Plan
	// Messages counts first delivery attempts (distinct pushes).
	Messages int
	// The four invariants: each must be 0.
	Lost, DoubleEffects, OrderViolations, Stuck int
	// DeadLettered counts distinct events in the archive (per subscription).
	DeadLettered int
	Seconds      float64
	// IdleTxTimeout is idle_in_transaction_session_timeout as a session of
	// the run's database sees it; IdleTxKills counts sessions the server
	// ended for it (its log), -1 when the log is not ours to read.
	IdleTxTimeout string
	IdleTxKills   int
	// Violations explains every non-zero invariant (at most a few per kind).
	Violations []string
}

// FaultTotal is the number of faults injected.
func (r *Report) FaultTotal() int {
	n := 0
	for _, v := range r.Faults {
		n += v
	}
	return n
}

// OK reports whether every invariant holds.
func (r *Report) OK() bool {
	return r.Lost == 0 && r.DoubleEffects == 0 && r.OrderViolations == 0 && r.Stuck == 0 && len(r.Violations) == 0
}

// Line is the last line of `make chaos`.
func (r *Report) Line() string {
	return fmt.Sprintf("chaos: seed=%d orders=%d accepted=%d shipped=%d declined=%d poisoned=%d faults=%d lost=%d double_effects=%d order_violations=%d stuck=%d dead_lettered=%d seconds=%.0f",
		r.Seed, r.Orders, r.Accepted, r.Shipped, r.Declined, r.Poisoned, r.FaultTotal(), r.Lost, r.DoubleEffects, r.OrderViolations, r.Stuck, r.DeadLettered, r.Seconds)
}

// WriteTable prints the faults by kind, the violations and the summary
// line, last.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nFaults (seed %d)\n  kind\tcount\n", r.Seed)
	for _, k := range Kinds {
		fmt.Fprintf(tw, "  %s\t%d\n", k, r.Faults[k])
	}
	if r.Messages > 0 {
		dups := r.Faults[FaultDuplicate] + r.Faults[FaultDuplicateConcurrent]
		fmt.Fprintf(tw, "  (messages pushed: %d; duplicated: %.1f%%)\n", r.Messages, 100*float64(dups)/float64(r.Messages))
	}
	if len(r.PublishFaults) > 0 {
		fmt.Fprintf(tw, "\nPublish faults per process\n  process\t%s\t%s\t%s\n", FaultPublishDelay, FaultPublishPause, FaultPublishFail)
		for _, p := range slices.Sorted(maps.Keys(r.PublishFaults)) {
			m := r.PublishFaults[p]
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\n", p, m[FaultPublishDelay], m[FaultPublishPause], m[FaultPublishFail])
		}
	}
	fmt.Fprintf(tw, "\nidle_in_transaction_session_timeout=%s; sessions ended by it: %d\n", r.IdleTxTimeout, r.IdleTxKills)
	fmt.Fprintln(tw, "\nInvariants")
	for _, inv := range []struct {
		name string
		n    int
	}{{"lost", r.Lost}, {"double_effects", r.DoubleEffects}, {"order_violations", r.OrderViolations}, {"stuck", r.Stuck}} {
		mark := "ok  "
		if inv.n != 0 {
			mark = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s=%d\n", mark, inv.name, inv.n)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(tw, "  - %s\n", v)
	}
	fmt.Fprintln(tw)
	tw.Flush()
	fmt.Fprintln(w, r.Line())
}

// observe reads the database, the gateway's ledger and the archive and
// judges the run.
func (c *run) observe(ctx context.Context) (*Report, error) {
	rep := &Report{Seed: c.cfg.Seed, Orders: c.cfg.Orders, Faults: c.in.Counts(), Plan: c.plan}
	c.in.mu.Lock()
	rep.Messages = c.in.messages
	rep.PublishFaults = map[string]map[string]int{}
	for p, m := range c.in.byProcess {
		rep.PublishFaults[p] = maps.Clone(m)
	}
	poisons := maps.Clone(c.in.events)
	c.in.mu.Unlock()
	db := c.r.DB()
	var ids []string
	want := map[string]scenario.Kind{}
	for _, it := range c.batch.Items {
		if it.OrderID != "" {
			ids = append(ids, it.OrderID)
			want[it.OrderID] = it.Kind
		}
	}
	rep.Accepted = len(ids)
	const maxShown = 5
	shown := map[string]int{}
	violate := func(kind, format string, args ...any) {
		if shown[kind] < maxShown {
			rep.Violations = append(rep.Violations, kind+": "+fmt.Sprintf(format, args...))
		}
		shown[kind]++
	}

	status := map[string]string{}
	rows, err := db.Query(ctx, `SELECT id::text, status FROM orders WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("load orders: %w", err)
	}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		status[id] = st
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	history := map[string][]orders.Status{}
	rows, err = db.Query(ctx, `SELECT order_id::text, status FROM order_status_history WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, id`, ids)
	if err != nil {
		return nil, fmt.Errorf("load history: %w", err)
	}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		history[id] = append(history[id], orders.Status(st))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ships, err := scenario.CountBy(ctx, c.r.DB(), `SELECT order_id::text, count(*) FROM shipments WHERE order_id = ANY($1::uuid[]) GROUP BY order_id`, ids)
	if err != nil {
		return nil, fmt.Errorf("count shipments: %w", err)
	}
	pays, err := scenario.CountBy(ctx, c.r.DB(), `SELECT order_id::text, count(*) FROM payments WHERE order_id = ANY($1::uuid[]) GROUP BY order_id`, ids)
	if err != nil {
		return nil, fmt.Errorf("count payments: %w", err)
	}
	var ledger []struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	if err := c.r.Gateway(ctx, http.MethodGet, "/_fake/charges", nil, &ledger); err != nil {
		return nil, err
	}
	charges := map[string][]string{}
	for _, ch := range ledger {
		charges[ch.OrderID] = append(charges[ch.OrderID], ch.Status)
	}
	archive, err := scenario.ReadDeadLetters(ctx, c.s.SinkFiles[scenario.DeadLetter])
	if err != nil {
		return nil, err
	}

	// The archive: every distinct dead-lettered event must be one the
	// injector poisoned; the order of a poisoned event is accounted for.
	accounted := map[string]bool{}
	seen := map[string]bool{}
	for _, e := range archive {
		key := e.SourceSubscription() + "\x00" + e.EventID()
		if seen[key] {
			continue
		}
		seen[key] = true
		rep.DeadLettered++
		if pz, ok := poisons[key]; ok {
			accounted[pz.OrderID] = true
			continue
		}
		class, msg := e.Reason()
		rep.Lost++
		violate("lost", "event %s (%s) from %s dead-lettered but never poisoned: %s: %s", e.EventID(), e.Type(), e.SourceSubscription(), class, oneLine(msg))
	}

	for _, id := range ids {
		kind, st, h := want[id], status[id], history[id]
		ch := charges[id]
		approved := count(ch, "approved")
		// lost
		wantStatus := string(orders.Shipped)
		if kind == scenario.KindDeclined {
			wantStatus = string(orders.PaymentFailed)
		}
		switch {
		case st == wantStatus:
			if st == string(orders.Shipped) {
				rep.Shipped++
			} else {
				rep.Declined++
			}
		case accounted[id]:
			rep.Poisoned++
		default:
			rep.Lost++
			violate("lost", "order %s (%s) is %q, want %s (no archived poison event)", id, kind, st, wantStatus)
		}
		if slices.Contains(h, orders.Paid) {
			rep.Paid++
		}
		// double effects
		if n := len(ch) - 1; n > 0 {
			rep.DoubleEffects += n
			violate("double_effects", "order %s charged %d times at the gateway: %v", id, len(ch), ch)
		}
		if n := pays[id] - 1; n > 0 {
			rep.DoubleEffects += n
			violate("double_effects", "order %s has %d payment rows", id, pays[id])
		}
		if n := ships[id] - 1; n > 0 {
			rep.DoubleEffects += n
			violate("double_effects", "order %s shipped %d times", id, ships[id])
		}
		if n := scenario.Repeats(h); n > 0 {
			rep.DoubleEffects += n
			violate("double_effects", "order %s history repeats a status: %v", id, h)
		}
		// order
		if ships[id] > 0 && approved == 0 {
			rep.OrderViolations++
			violate("order_violations", "order %s shipped without an approved charge (%v)", id, ch)
		}
		if kind == scenario.KindDeclined && ships[id] > 0 {
			rep.OrderViolations++
			violate("order_violations", "declined order %s shipped", id)
		}
		if msg := badHistory(h); msg != "" {
			rep.OrderViolations++
			violate("order_violations", "order %s: %s", id, msg)
		}
		for _, pair := range [][2]string{{subPayment, subShipment}, {subShipment, subAnalytics}} {
			later, ok := c.in.firstPushOf(pair[1], id)
			if !ok {
				continue
			}
			earlier, ok := c.in.firstPushOf(pair[0], id)
			if !ok || !earlier.Before(later) {
				rep.OrderViolations++
				violate("order_violations", "order %s: first push on %s at %s, on %s at %v (present %t)", id, pair[1], later.Format("15:04:05.000"), pair[0], earlier.Format("15:04:05.000"), ok)
			}
		}
	}

	if err := db.QueryRow(ctx, `SELECT current_setting('idle_in_transaction_session_timeout')`).Scan(&rep.IdleTxTimeout); err != nil {
		return nil, fmt.Errorf("read idle_in_transaction_session_timeout: %w", err)
	}
	rep.IdleTxKills = -1
	if path := c.s.DatabaseLogPath(); path != "" {
		if b, err := os.ReadFile(path); err == nil {
			rep.IdleTxKills = bytes.Count(b, []byte("idle-in-transaction timeout"))
		}
	}

	// stuck: pending outbox rows and claims left in progress.
	var pending, inProgress int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil {
		return nil, fmt.Errorf("count pending outbox rows: %w", err)
	}
	if err := db.QueryRow(ctx, `SELECT count(*) FROM processed_events WHERE status = 'in_progress'`).Scan(&inProgress); err != nil {
		return nil, fmt.Errorf("count claims in progress: %w", err)
	}
	rep.Stuck = pending + inProgress
	if rep.Stuck > 0 {
		violate("stuck", "%d outbox rows pending, %d idempotency claims in progress", pending, inProgress)
	}
	for k, n := range shown {
		if n > maxShown {
			rep.Violations = append(rep.Violations, fmt.Sprintf("%s: ... and %d more", k, n-maxShown))
		}
	}
	return rep, nil
}

// badHistory describes a history that does not start pending, makes a
// move the status machine forbids or ships before paying; "" when fine.
func badHistory(h []orders.Status) string {
	if len(h) == 0 || h[0] != orders.Pending {
		return fmt.Sprintf("history %v does not start pending", h)
	}
	paid := false
	for i, s := range h {
		if s == orders.Paid {
			paid = true
		}
		if s == orders.Shipped && !paid {
			return fmt.Sprintf("shipped before paid: %v", h)
		}
		if i > 0 && h[i-1] != s && !orders.CanMove(h[i-1], s) {
			return fmt.Sprintf("illegal move %s -> %s in %v", h[i-1], s, h)
		}
	}
	return ""
}

func count(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}
