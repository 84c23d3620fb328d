// Package chaos is the chaos run (`make chaos`, tools/cmd/chaos): it starts
// the local stack, drives orders through it while a seeded fault injector
// duplicates, fails and poisons pushes, gives the payment gateway bursts of
// 5xx and timeouts, slows and fails Pub/Sub publishes, restarts
// PostgreSQL, SIGKILLs every function process and takes the shipments
// table away for a while, and then checks from the database, the gateway's
// ledger and the dead-letter archive that nothing was lost, nothing
// happened twice, first deliveries came in order and nothing is stuck.
// See docs/chaos.md.
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/platform/tools/localstack/scenario"
	"example.com/platform/tools/localstack/stack"
)

// Defaults of Config.
const (
	DefaultOrders       = 10000
	DefaultWorkers      = 4
	DefaultBackoffScale = 0.05
	DefaultTimeout      = 14 * time.Minute
)

// Config configures Run. Zero values are the defaults.
type Config struct {
	// Orders is the number of orders sent through the orders API.
	Orders int
	// Seed drives every random choice of the run.
	Seed uint64
	// Workers send orders concurrently; Rate, when positive, caps the
	// orders per second.
	Workers int
	Rate    float64
	// BackoffScale multiplies the manifests' retry backoff (default 0.05:
	// 0.5 s to 30 s, so the scaled retry budget of ten attempts, about two
	// minutes, outlasts the breaker's 30 s open state).
	BackoffScale float64
	// Timeout bounds the whole run, start included.
	Timeout time.Duration
	// Log receives every process's log; Progress a line per phase and per
	// timed fault. nil discards.
	Log, Progress io.Writer
}

// ErrBadConfig is returned by Validate (and Run) for a negative field.
var ErrBadConfig = errors.New("chaos: invalid config")

// Validate reports a configuration error.
func (c Config) Validate() error {
	if c.Orders < 0 || c.Workers < 0 || c.Rate < 0 || c.BackoffScale < 0 || c.Timeout < 0 {
		return fmt.Errorf("%w: orders, workers, rate, backoff scale and timeout must not be negative", ErrBadConfig)
	}
	return nil
}

func (c *Config) defaults() {
	if c.Orders <= 0 {
		c.Orders = DefaultOrders
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.BackoffScale <= 0 {
		c.BackoffScale = DefaultBackoffScale
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// run is one chaos run in progress.
type run struct {
	cfg   Config
	s     *stack.Stack
	r     *scenario.Runner
	in    *injector
	plan  Plan
	batch *scenario.Batch
	sent  atomic.Int64
	pmu   sync.Mutex
	start time.Time
	errMu sync.Mutex
	errs  []error
}

func (c *run) progress(format string, args ...any) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	fmt.Fprintf(c.cfg.Progress, "chaos: %6.1fs "+format+"\n", append([]any{time.Since(c.start).Seconds()}, args...)...)
}

func (c *run) fail(err error) {
	c.errMu.Lock()
	c.errs = append(c.errs, err)
	c.errMu.Unlock()
}

// Run starts the stack, runs the chaos and returns the report. An error
// means the run itself failed (the stack did not start, a fault could not
// be injected or undone); a violated invariant is in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c := &run{cfg: cfg, in: newInjector(cfg.Seed), start: time.Now()}
	c.progress("seed=%d orders=%d: starting the local stack (the first run builds every function)", cfg.Seed, cfg.Orders)
	s, err := stack.Start(ctx, stack.Options{
		BackoffScale:       cfg.BackoffScale,
		Log:                logCounter{out: cfg.Log, in: c.in},
		NoBigQueryEmulator: true,
		ScheduleEvery:      time.Second,
		Fault:              c.in.fault,
		PubSubFault:        c.in.publish,
		DatabaseSettings:   map[string]string{"idle_in_transaction_session_timeout": IdleTxTimeout},
		Env: map[string]map[string]string{
			"payment": {"PAYMENT_GATEWAY_TIMEOUT": "1s", "IDEMPOTENCY_LEASE": "5s"},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("start the stack: %w", err)
	}
	defer s.Stop()
	c.s = s
	var functions []string
	for _, name := range s.Names() {
		if s.Repo.Function(name) != nil {
			functions = append(functions, name)
		}
	}
	c.plan = NewPlan(cfg.Seed, cfg.Orders, functions)
	c.progress("stack up; fault plan:")
	for _, a := range c.plan.Actions {
		c.progress("  %s", a)
	}
	r, err := scenario.New(ctx, s, scenario.Config{Orders: scenario.MinOrders, Log: io.Discard, StuckPolls: 50})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	c.r = r
	c.batch = c.newBatch()
	if err := r.Gateway(ctx, http.MethodPut, "/_fake/behavior",
		map[string]any{"scope": "customer", "id": c.batch.DeclinedCustomer, "mode": "decline", "decline_code": scenario.DeclineCode}, nil); err != nil {
		return nil, err
	}

	var faults sync.WaitGroup
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		c.schedule(ctx, &faults)
	}()
	if err := c.send(ctx); err != nil {
		return nil, err
	}
	c.progress("sent %d orders; waiting for the remaining timed faults to end", c.sent.Load())
	<-schedDone
	faults.Wait()
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	c.progress("faults over; waiting until the system is quiet")
	serr := r.Settle(ctx, c.batch)
	octx := ctx
	if serr != nil {
		var ocancel context.CancelFunc
		octx, ocancel = context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer ocancel()
	}
	c.progress("settled; checking")
	rep, err := c.observe(octx)
	if err != nil {
		return nil, errors.Join(serr, err)
	}
	if serr != nil {
		rep.Violations = append(rep.Violations, "the system did not settle: "+serr.Error())
	}
	rep.Seconds = time.Since(c.start).Seconds()
	return rep, nil
}

// newBatch plans the orders: DeclineRate of them for the declined
// customer, chosen by the seed.
func (c *run) newBatch() *scenario.Batch {
	d := newDice(c.cfg.Seed ^ 0xba7c4)
	run := fmt.Sprintf("%016x", c.cfg.Seed)[:8] + fmt.Sprintf("%04x", time.Now().UnixNano()&0xffff)
	b := &scenario.Batch{RunID: run, DeclinedCustomer: "customer-" + run + "-declined"}
	for i := range c.cfg.Orders {
		it := scenario.Item{Kind: scenario.KindOrder, CustomerID: fmt.Sprintf("customer-%s-%05d", run, i), IdempotencyKey: fmt.Sprintf("chaos-%s-%05d", run, i)}
		if d.float() < DeclineRate {
			it.Kind, it.CustomerID = scenario.KindDeclined, b.DeclinedCustomer
		}
		b.Items = append(b.Items, it)
	}
	return b
}

// send posts every order with Workers goroutines (at most Rate per
// second). An order the API never accepted (after retrying for a minute)
// is left out of the checks and reported.
func (c *run) send(ctx context.Context) error {
	var next atomic.Int64
	var tick <-chan time.Time
	if c.cfg.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / c.cfg.Rate))
		defer t.Stop()
		tick = t.C
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, c.cfg.Workers)
	for range c.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(c.batch.Items) {
					return
				}
				if tick != nil {
					select {
					case <-tick:
					case <-ctx.Done():
						return
					}
				}
				if err := c.createOrder(ctx, client, &c.batch.Items[i]); err != nil {
					if ctx.Err() != nil {
						errs <- ctx.Err()
						return
					}
					c.progress("order %d not accepted: %v", i, err)
				}
				if n := c.sent.Add(1); n%1000 == 0 && int(n) < len(c.batch.Items) {
					c.progress("sent %d orders", n)
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// createOrder POSTs one order, retrying 5xx answers and connection errors
// with the same Idempotency-Key for up to a minute (the API may be killed
// or PostgreSQL restarting).
func (c *run) createOrder(ctx context.Context, client *http.Client, it *scenario.Item) error {
	body, _ := json.Marshal(map[string]any{
		"customer_id": it.CustomerID,
		"currency":    "EUR",
		"items":       []map[string]any{{"sku": "SKU-1", "quantity": 1, "unit_price": 1000}},
	})
	deadline := time.Now().Add(time.Minute)
	var last error
	for wait := 50 * time.Millisecond; time.Now().Before(deadline); wait = min(wait*2, time.Second) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.s.URL(scenario.OrdersAPI)+"/v1/orders", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", it.IdempotencyKey)
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
				var v struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(b, &v); err != nil || v.ID == "" {
					return fmt.Errorf("post order: answer without id: %s", b)
				}
				it.OrderID, it.Sent = v.ID, true
				return nil
			case resp.StatusCode < 500 && resp.StatusCode != http.StatusConflict && resp.StatusCode != http.StatusTooManyRequests:
				return fmt.Errorf("post order: %s: %s", resp.Status, strings.TrimSpace(string(b)))
			}
			err = fmt.Errorf("post order: %s: %s", resp.Status, strings.TrimSpace(string(b)))
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return last
}

// schedule fires the plan's actions as the sent count passes their index.
func (c *run) schedule(ctx context.Context, wg *sync.WaitGroup) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	next := 0
	for next < len(c.plan.Actions) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := int(c.sent.Load())
		for next < len(c.plan.Actions) && (c.plan.Actions[next].At <= n || n >= c.cfg.Orders) {
			a := c.plan.Actions[next]
			next++
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.do(ctx, a); err != nil {
					c.fail(fmt.Errorf("fault %s: %w", a, err))
				}
			}()
		}
	}
}

// do injects one timed fault and undoes it after its Hold.
func (c *run) do(ctx context.Context, a Action) error {
	c.progress("fault: %s", a)
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	switch a.Kind {
	case FaultSigKill:
		if err := c.s.SigKill(a.Target); err != nil {
			return err
		}
		c.in.count(FaultSigKill, 1)
		_ = sleep(a.Hold)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		return c.s.Restart(rctx, a.Target)
	case FaultPGRestart:
		if err := c.s.RestartDatabase(); err != nil {
			return err
		}
		c.in.count(FaultPGRestart, 1)
		return nil
	case FaultTableAway:
		away, back, how, err := c.tableAway(ctx)
		if err != nil {
			return err
		}
		if err := c.sql(ctx, away); err != nil {
			return err
		}
		c.progress("shipments table away: %s", how)
		c.in.count(FaultTableAway, 1)
		hits := c.in.Counts()[FaultTableAwayRetry]
		_ = sleep(a.Hold)
		for end := time.Now().Add(TableAwayMax - a.Hold); c.in.Counts()[FaultTableAwayRetry]-hits < TableAwayHits && time.Now().Before(end); {
			if sleep(100*time.Millisecond) != nil {
				break
			}
		}
		err = c.sql(context.WithoutCancel(ctx), back)
		c.progress("fault over: shipments table back after %d shipment retries on it", c.in.Counts()[FaultTableAwayRetry]-hits)
		return err
	case FaultGateway5xx:
		set := func(b map[string]any) error {
			b["scope"] = "default"
			return c.r.Gateway(context.WithoutCancel(ctx), http.MethodPut, "/_fake/behavior", b, nil)
		}
		if err := set(map[string]any{"mode": "fail", "status": 503}); err != nil {
			return err
		}
		c.in.count(FaultGateway5xx, 1)
		_ = sleep(a.Hold)
		if err := set(map[string]any{"mode": "hang"}); err != nil {
			return err
		}
		c.in.count(FaultGatewayTimeout, 1)
		_ = sleep(a.Hold)
		err := set(map[string]any{"mode": "approve"})
		c.progress("fault over: gateway approves again")
		return err
	case FaultPublishFail:
		c.in.window.Add(1)
		_ = sleep(a.Hold)
		c.in.window.Add(-1)
		c.progress("fault over: publish window closed")
		return nil
	}
	return fmt.Errorf("unknown fault kind %q", a.Kind)
}

// tableAway returns the statements that take the shipments table away
// from the shipment function and give it back: where the function
// connects as a role of its own, revoke that role's privileges on the
// table (and grant them back), otherwise rename the table.
func (c *run) tableAway(ctx context.Context) (away, back, how string, err error) {
	role := dbUser(c.s.ProcessEnv(scenario.Shipment, "DATABASE_URL"))
	if role == "" || role == dbUser(c.s.DatabaseURL) {
		return "ALTER TABLE shipments RENAME TO shipments_away", "ALTER TABLE shipments_away RENAME TO shipments",
			"renamed to shipments_away (the functions share one database role)", nil
	}
	rows, err := c.r.DB().Query(ctx, `SELECT privilege_type FROM information_schema.role_table_grants
		WHERE grantee = $1 AND table_name = 'shipments' AND table_schema = current_schema()`, role)
	if err != nil {
		return "", "", "", fmt.Errorf("grants of %s: %w", role, err)
	}
	privs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", "", "", fmt.Errorf("grants of %s: %w", role, err)
	}
	if len(privs) == 0 {
		return "", "", "", fmt.Errorf("role %s has no grant on shipments to revoke", role)
	}
	list, r := strings.Join(privs, ", "), pgx.Identifier{role}.Sanitize()
	return "REVOKE " + list + " ON shipments FROM " + r, "GRANT " + list + " ON shipments TO " + r,
		"revoked " + list + " from role " + role, nil
}

// dbUser is the user name of a PostgreSQL URL ("" when none).
func dbUser(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return ""
	}
	return cfg.User
}

// sql runs one statement on the stack's database as its owner, retrying
// (a lock timeout, a restarting server) for up to a minute.
func (c *run) sql(ctx context.Context, stmt string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := func() error {
			conn, err := c.r.DB().Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			_, err = conn.Exec(ctx, "SET lock_timeout = '2s'; "+stmt)
			return err
		}()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		c.progress("%s: %v (retrying)", stmt, err)
		time.Sleep(200 * time.Millisecond)
	}
}
