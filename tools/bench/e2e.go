package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"example.com/platform/shared/events"
	"example.com/platform/shared/messaging"
	"example.com/platform/tools/localstack/stack"
)

// Targets of the stack measures.
const (
	e2eTargetP99  = 50 * time.Millisecond
	maxRateP99    = 250 * time.Millisecond
	ordersAPI     = "ordersapi"
	drainTimeout  = 30 * time.Second
	quietTimeout  = 5 * time.Minute
	achievedShare = 0.95 // a phase must post at least this share of its rate
)

// functionNames are the stack's function processes (not the fake gateway
// or an emulator).
func (r *runner) functionNames() []string {
	var out []string
	for _, n := range r.st.Names() {
		if n != stack.GatewayName && n != "bigquery" {
			out = append(out, n)
		}
	}
	return out
}

// usage is a snapshot of CPU times and handled events.
type usage struct {
	at       time.Time
	cpu      map[string]time.Duration // by process name, plus the pseudo-names below
	pushes   map[string]int64         // by consumer
	orders   int
	postgres time.Duration
	self     time.Duration
}

const (
	cpuPostgres = "postgres"
	cpuSelf     = "bench process (dispatcher, pstest, load generator)"
)

func (r *runner) snapshot(orders int) usage {
	u := usage{at: time.Now(), cpu: map[string]time.Duration{}, pushes: map[string]int64{}, orders: orders}
	for _, n := range r.st.Names() {
		u.cpu[n] = processCPU(r.st.Pid(n))
	}
	for _, s := range r.st.Dispatcher.Stats() {
		u.pushes[s.Consumer] += s.Pushes
	}
	u.postgres = postgresCPU(r.dataDir)
	u.self = processCPU(0)
	return u
}

// CPUUse is the CPU time one process spent in a phase and the events it
// handled.
type CPUUse struct {
	Name   string
	CPU    time.Duration
	Events int64
}

// PerEvent is CPU per event in milliseconds (0 without events).
func (c CPUUse) PerEvent() float64 {
	if c.Events == 0 {
		return 0
	}
	return float64(c.CPU) / float64(time.Millisecond) / float64(c.Events)
}

func (r *runner) cpuBetween(a, b usage) (fns []CPUUse, others []CPUUse) {
	for _, n := range r.functionNames() {
		ev := b.pushes[n] - a.pushes[n]
		if n == ordersAPI {
			ev += int64(b.orders - a.orders)
		}
		fns = append(fns, CPUUse{Name: n, CPU: b.cpu[n] - a.cpu[n], Events: ev})
	}
	orders := int64(b.orders - a.orders)
	if _, ok := a.cpu[stack.GatewayName]; ok {
		others = append(others, CPUUse{Name: stack.GatewayName + " (test double)", CPU: b.cpu[stack.GatewayName] - a.cpu[stack.GatewayName], Events: orders})
	}
	others = append(others,
		CPUUse{Name: cpuPostgres, CPU: b.postgres - a.postgres, Events: orders},
		CPUUse{Name: cpuSelf, CPU: b.self - a.self, Events: orders})
	return fns, others
}

// endToEnd warms the stack up, then posts orders at E2ERate for Phase and
// measures latency and CPU per event. Every order must be shipped.
func (r *runner) endToEnd(ctx context.Context) error {
	l := newLoader(r.st.URL(ordersAPI), r.db, r.runID)
	r.loader = l
	warm := 3 * time.Second
	if r.cfg.Quick {
		warm = time.Second
	}
	if _, err := l.runPhase(ctx, r.cfg.E2ERate, warm, drainTimeout); err != nil {
		return err
	}
	if err := r.quiet(ctx); err != nil {
		return err
	}
	// Idle CPU: what the stack burns with no traffic (mostly the
	// dispatcher polling pstest), over a few seconds.
	idle := 5 * time.Second
	if r.cfg.Quick {
		idle = time.Second
	}
	a := r.snapshot(0)
	time.Sleep(idle)
	b := r.snapshot(0)
	r.res.IdleSeconds = b.at.Sub(a.at).Seconds()
	r.res.IdleFns, r.res.IdleOthers = r.cpuBetween(a, b)

	r.logf("end to end: %.0f orders/s for %s", r.cfg.E2ERate, r.cfg.Phase)
	a = r.snapshot(0)
	waitPerf := r.startPerf(ctx, r.cfg.Phase)
	p, err := l.runPhase(ctx, r.cfg.E2ERate, r.cfg.Phase, drainTimeout)
	waitPerf()
	if err != nil {
		return err
	}
	if err := r.quiet(ctx); err != nil {
		return err
	}
	b = r.snapshot(p.Posted)
	r.logf("end to end: %s", p)
	r.res.E2E = p
	r.res.CPUFns, r.res.CPUOthers = r.cpuBetween(a, b)
	for _, c := range append(append([]CPUUse(nil), r.res.CPUFns...), r.res.CPUOthers...) {
		r.logf("cpu %-50s %8s for %6d events: %.2f ms/event", c.Name, c.CPU, c.Events, c.PerEvent())
	}
	if !p.AllShipped() {
		return fmt.Errorf("%w: end to end at %.0f/s: %w: %s", ErrVerify, r.cfg.E2ERate, errNotShipped, p)
	}
	return nil
}

// quiet waits until the dispatcher has nothing in flight or to pull.
func (r *runner) quiet(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, quietTimeout)
	defer cancel()
	return r.st.WaitQuiet(qctx)
}

// sustained reports whether a phase kept up: the rate was posted, every
// order accepted and shipped, and p99 under the max-rate bound.
func sustained(p *Phase) bool {
	return p.AllShipped() && p.Achieved >= achievedShare*p.Rate && p.Quantile(0.99) < maxRateP99
}

// maxRate searches the highest rate the stack sustains for Phase: from
// 200/s up (300, 400, ...) while it holds, or down (150, 100, 50) until it
// does. Quick mode tries 100 and 200 only.
func (r *runner) maxRate(ctx context.Context) error {
	try := func(rate float64) (bool, error) {
		r.logf("max rate: trying %.0f orders/s for %s", rate, r.cfg.Phase)
		p, err := r.loader.runPhase(ctx, rate, r.cfg.Phase, drainTimeout)
		if err != nil {
			return false, err
		}
		ok := sustained(p)
		r.logf("max rate: %s: sustained %t", p, ok)
		r.res.MaxPhases = append(r.res.MaxPhases, p)
		if err := r.quiet(ctx); err != nil {
			return false, err
		}
		// Every accepted order must be shipped eventually, even at a rate
		// the stack cannot sustain.
		if err := r.waitShipped(ctx, p.OrderIDs); err != nil {
			return false, err
		}
		if ok {
			r.res.MaxRate = max(r.res.MaxRate, rate)
		}
		return ok, nil
	}
	if r.cfg.Quick {
		for _, rate := range []float64{100, 200} {
			if ok, err := try(rate); err != nil || !ok {
				return err
			}
		}
		return nil
	}
	ok, err := try(200)
	if err != nil {
		return err
	}
	if ok {
		for rate := 300.0; rate <= 1000; rate += 100 {
			if ok, err := try(rate); err != nil || !ok {
				return err
			}
		}
		return nil
	}
	for _, rate := range []float64{150, 100, 50} {
		if ok, err := try(rate); err != nil || ok {
			return err
		}
	}
	return nil
}

// waitShipped waits until every order in ids has its shipment.
func (r *runner) waitShipped(ctx context.Context, ids []string) error {
	deadline := time.Now().Add(quietTimeout)
	for {
		var n int
		if err := r.db.QueryRow(ctx, `SELECT count(*) FROM shipments WHERE order_id = ANY($1::uuid[])`, ids).Scan(&n); err != nil {
			return err
		}
		if n == len(ids) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d of %d orders never shipped", ErrVerify, len(ids)-n, len(ids))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// coldStarts times, for every function and for the bare function, the
// start of a second copy of its binary (same environment, another port) to
// its first 2xx answer to a real request: for the orders API a GET of an
// existing order, for a consumer the replay of a message of one of its
// subscriptions (a duplicate, acknowledged with 2xx). Each cold start of a
// function builds its handler on that request (connects to PostgreSQL and
// Pub/Sub, checks its migrations), as on Cloud Run.
func (r *runner) coldStarts(ctx context.Context) error {
	bare, err := buildBare(ctx, r.cfg.Root, r.st.WorkDir)
	if err != nil {
		return err
	}
	// One start of each binary is not counted: it pages the binary in.
	times := func(bin string, env []string, req func(context.Context, string) (*http.Request, error)) (ColdStart, error) {
		var total, listen []time.Duration
		for i := range r.cfg.ColdStarts + 1 {
			d, l, err := coldStart(ctx, bin, env, req, 30*time.Second)
			if err != nil {
				return ColdStart{}, err
			}
			if i > 0 {
				total, listen = append(total, d), append(listen, l)
			}
		}
		return ColdStart{Median: medianDur(total), Listening: medianDur(listen), All: total}, nil
	}
	bt, err := times(bare, []string{"PATH=/usr/bin:/bin"}, func(ctx context.Context, base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	})
	if err != nil {
		return fmt.Errorf("cold start of the bare function: %w", err)
	}
	bt.Name = "bare"
	r.res.ColdBare = bt
	r.logf("cold start: bare function %s, listening after %s (%v)", ms(bt.Median), ms(bt.Listening), bt.All)

	msgs := r.st.Server.Messages()
	for _, name := range r.functionNames() {
		bin, env, _, ok := r.st.Command(name)
		if !ok {
			continue
		}
		var req func(context.Context, string) (*http.Request, error)
		if name == ordersAPI && r.res.E2E != nil && len(r.res.E2E.OrderIDs) > 0 {
			id := r.res.E2E.OrderIDs[0]
			req = func(ctx context.Context, base string) (*http.Request, error) {
				return http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/orders/"+id, nil)
			}
		} else {
			var topics = map[string]string{}
			for _, s := range r.st.Dispatcher.Stats() {
				if s.Consumer == name {
					topics["projects/"+r.st.Project+"/topics/"+s.Topic] = s.Subscription
				}
			}
			for _, m := range msgs {
				sub, ok := topics[m.Topic]
				if !ok {
					continue
				}
				msg := messaging.Message{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey}
				del := events.Delivery{Subscription: "projects/" + r.st.Project + "/subscriptions/" + sub, MessageID: m.ID, OrderingKey: m.OrderingKey, PublishTime: m.PublishTime, Attempt: 2}
				req = func(ctx context.Context, base string) (*http.Request, error) {
					return events.NewPushRequest(ctx, base+"/", msg, del)
				}
				break
			}
		}
		if req == nil {
			r.logf("cold start: %s skipped (no request to replay)", name)
			continue
		}
		ft, err := times(bin, env, req)
		if err != nil {
			return fmt.Errorf("cold start of %s: %w", name, err)
		}
		ft.Name = name
		ft.LocalSink = r.st.SinkFiles[name] != ""
		r.res.Cold = append(r.res.Cold, ft)
		r.logf("cold start: %s %s, listening after %s (%v)", name, ms(ft.Median), ms(ft.Listening), ft.All)
	}
	slices.SortFunc(r.res.Cold, func(a, b ColdStart) int { return strings.Compare(a.Name, b.Name) })
	return nil
}
