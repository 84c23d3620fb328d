// Package scenario drives the whole local system through the demo flow and
// checks what it did: `make demo` (tools/cmd/demo) prints the result, the
// end-to-end tests (tests/e2e) assert it.
//
// A Batch is N messages: N-1 orders sent to the orders API over HTTP, one of
// them for a customer the fake payment gateway declines, and one poison
// message published straight to order.created with the real Pub/Sub client:
// a well-formed order.created CloudEvent for an order the API never
// accepted, which the payment function can never process and must
// dead-letter (a permanent "order not found"). The analytics function
// records it like any other event, so it is dead-lettered exactly once.
// One more order is parked: the gateway refuses its customer (HTTP 400, a
// permanent failure), so payment dead-letters its order.created and parks
// its ordering key; Runner.Release then cancels it through the API (the
// order.cancelled event waits, parked behind the dead letter), lifts the
// gateway's refusal and replays the dead letter with eventctl, so payment
// applies created, then cancelled, once each; it also discards the poison
// message's parked key with a reason.
//
// Runner.Settle waits, without sleeping as synchronisation, until the
// system is quiet: it polls, bounded by the context's deadline, until the
// dispatcher has nothing in flight and nothing to pull, no outbox row is
// pending and every order is in a terminal status, on two consecutive
// polls. Runner.Observe then reads what happened from PostgreSQL, the fake
// gateway, the analytics and dead-letter JSON-lines sinks and the
// dispatcher's counters, and Check turns that into a Report of counts and
// violated invariants.
package scenario

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/events"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/tools/localstack/stack"
)

// Defaults and fixed names of the flow.
const (
	// DefaultOrders is the default batch size (poison message included).
	DefaultOrders = 20
	// MinOrders is the smallest batch: one approved order, the declined
	// one, the poison message and the parked order.
	MinOrders = 4
	// DefaultPollInterval is the wait between two polls of Settle.
	DefaultPollInterval = 100 * time.Millisecond
	// DefaultRelayEvery is how often Settle asks the outbox relay to relay
	// outbox rows that stay pending (what Cloud Scheduler does in
	// production every minute).
	DefaultRelayEvery = time.Second
	// DefaultStuckPolls is how many consecutive quiet polls with no pending
	// outbox row Settle accepts while some order is not terminal before it
	// gives up waiting: nothing can move such an order any more.
	DefaultStuckPolls = 30
	// DeclineCode is the gateway's decline code for the declined customer.
	DeclineCode = "insufficient_funds"
	// RefusedStatus is the gateway's answer to the parked order's charge
	// until Release lifts it: a 400, which payment treats as permanent.
	RefusedStatus = http.StatusBadRequest
	// PoisonSource is the CloudEvents source of the poison message.
	PoisonSource = "//example.com/demo/poison"
	// Processes and topics the flow uses.
	OrdersAPI    = "ordersapi"
	Payment      = "payment"
	Shipment     = "shipment"
	Analytics    = "analytics"
	DeadLetter   = "deadletter"
	TopicCreated = "order.created"
)

// ErrNoSink is returned when the stack has no JSON-lines file for the
// analytics or dead-letter function (a BigQuery emulator runs, or the
// function was not started): start the stack with NoBigQueryEmulator.
var ErrNoSink = errors.New("scenario: no JSON-lines sink file (start the stack with Options.NoBigQueryEmulator)")

// ErrBadConfig is returned for a Config that Validate rejects.
var ErrBadConfig = errors.New("scenario: invalid config")

// Config configures a Runner. Every zero value is a sane default.
type Config struct {
	// Orders is the batch size including the poison message (default
	// DefaultOrders, at least MinOrders).
	Orders int
	// HTTPClient talks to the orders API and the fake gateway; default a
	// client with a 30s timeout.
	HTTPClient *http.Client
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// PollInterval, RelayEvery and StuckPolls tune Settle (see the
	// Default constants).
	PollInterval time.Duration
	RelayEvery   time.Duration
	StuckPolls   int
}

// Validate reports a configuration error.
func (c Config) Validate() error {
	if c.Orders != 0 && c.Orders < MinOrders {
		return fmt.Errorf("%w: orders must be at least %d (one approved, one declined, one poison, one parked), got %d", ErrBadConfig, MinOrders, c.Orders)
	}
	if c.PollInterval < 0 || c.RelayEvery < 0 || c.StuckPolls < 0 {
		return fmt.Errorf("%w: negative poll interval, relay interval or stuck polls", ErrBadConfig)
	}
	return nil
}

func (c *Config) defaults() {
	if c.Orders == 0 {
		c.Orders = DefaultOrders
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.RelayEvery == 0 {
		c.RelayEvery = DefaultRelayEvery
	}
	if c.StuckPolls == 0 {
		c.StuckPolls = DefaultStuckPolls
	}
}

// Kind is what a batch item is.
type Kind string

// Kinds of items.
const (
	KindOrder    Kind = "order"    // approved by the gateway: paid, then shipped
	KindDeclined Kind = "declined" // declined by the gateway: payment_failed
	KindPoison   Kind = "poison"   // published straight to order.created; dead-lettered
	KindParked   Kind = "parked"   // created refused by the gateway, then cancelled: parked, replayed
)

// Item is one message of a batch.
type Item struct {
	Kind       Kind
	CustomerID string
	// IdempotencyKey is the orders API's Idempotency-Key (orders only).
	IdempotencyKey string
	// OrderID is the id the API assigned (orders), or the made-up id the
	// poison message announces; empty until sent.
	OrderID string
	// EventID is the CloudEvent id of the poison message.
	EventID string
	Sent    bool
}

// Batch is the plan of one run and, once sent, its ids. It is not safe for
// concurrent use: send and observe from one goroutine at a time.
type Batch struct {
	// RunID makes customer ids and idempotency keys unique per run, so
	// runs against a shared database do not collide.
	RunID string
	Items []Item
	// DeclinedCustomer is the customer id the gateway declines.
	DeclinedCustomer string
	// RefusedCustomer is the customer id the gateway refuses with
	// RefusedStatus until Release (the parked order's).
	RefusedCustomer string
}

// Len returns the number of items.
func (b *Batch) Len() int { return len(b.Items) }

// Orders returns the items sent through the API (approved, declined and
// parked).
func (b *Batch) Orders() []Item {
	var out []Item
	for _, it := range b.Items {
		if it.Kind != KindPoison {
			out = append(out, it)
		}
	}
	return out
}

// Poison returns the poison item.
func (b *Batch) Poison() Item { return b.first(KindPoison) }

// Parked returns the parked order's item.
func (b *Batch) Parked() Item { return b.first(KindParked) }

func (b *Batch) first(k Kind) Item {
	for _, it := range b.Items {
		if it.Kind == k {
			return it
		}
	}
	return Item{}
}

// NewBatch plans n items: orders for customers customer-<run>-NNN, the
// declined customer's order in the middle, the poison message right
// after it, then the parked order. n below MinOrders is raised to
// MinOrders.
func NewBatch(n int) *Batch {
	n = max(n, MinOrders)
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	run := hex.EncodeToString(rb[:])
	b := &Batch{RunID: run, DeclinedCustomer: "customer-" + run + "-declined", RefusedCustomer: "customer-" + run + "-refused"}
	declined := (n - 2) / 2
	for i := range n {
		it := Item{Kind: KindOrder, CustomerID: fmt.Sprintf("customer-%s-%03d", run, i), IdempotencyKey: fmt.Sprintf("demo-%s-%03d", run, i)}
		switch i {
		case declined:
			it.Kind, it.CustomerID = KindDeclined, b.DeclinedCustomer
		case declined + 1:
			it = Item{Kind: KindPoison, OrderID: uuid.NewString(), EventID: "poison-" + run}
		case declined + 2:
			it.Kind, it.CustomerID = KindParked, b.RefusedCustomer
		}
		b.Items = append(b.Items, it)
	}
	return b
}

// Runner runs the flow against one started stack. Close releases its
// database pool and publisher; it does not stop the stack.
type Runner struct {
	Stack *stack.Stack
	cfg   Config
	db    *pgxpool.Pool
	pub   *messaging.PubSub
}

// New returns a Runner for s. It needs the JSON-lines sinks of the
// analytics and dead-letter functions (ErrNoSink otherwise).
func New(ctx context.Context, s *stack.Stack, cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	for _, fn := range []string{Analytics, DeadLetter} {
		if s.SinkFiles[fn] == "" {
			return nil, fmt.Errorf("%w: %s", ErrNoSink, fn)
		}
	}
	db, err := pgxpool.New(ctx, s.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("connect database: %w", err)
	}
	return &Runner{Stack: s, cfg: cfg, db: db, pub: messaging.NewPubSub(s.Client)}, nil
}

// DB returns the Runner's pool on the stack's database.
func (r *Runner) DB() *pgxpool.Pool { return r.db }

// Close releases the pool and the publisher.
func (r *Runner) Close() {
	r.pub.Stop()
	r.db.Close()
}

// NewBatch plans a batch of Config.Orders items.
func (r *Runner) NewBatch() *Batch { return NewBatch(r.cfg.Orders) }

// Run plans, sends and settles a batch, then observes and checks it. A
// Settle timeout is not returned as an error: the report then lists what
// did not settle (and Report.SettleErr says why).
func (r *Runner) Run(ctx context.Context) (*Report, error) {
	b := r.NewBatch()
	if err := r.Send(ctx, b); err != nil {
		return nil, err
	}
	return r.Finish(ctx, b)
}

// Finish releases the batch's parked keys (Release), settles and observes
// the batch and checks it.
func (r *Runner) Finish(ctx context.Context, b *Batch) (*Report, error) {
	if err := r.Release(ctx, b); err != nil {
		return nil, err
	}
	serr := r.Settle(ctx, b)
	octx := ctx
	if serr != nil && ctx.Err() != nil {
		// The deadline passed while settling: still look at what happened.
		var cancel context.CancelFunc
		octx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
	}
	obs, err := r.Observe(octx, b)
	if err != nil {
		return nil, errors.Join(serr, err)
	}
	rep := Check(b, obs)
	if serr != nil {
		rep.SettleErr = serr.Error()
		rep.Violations = append(rep.Violations, "the system did not settle: "+serr.Error())
	}
	return rep, nil
}

// Send tells the gateway to decline the batch's declined customer, then
// sends every item not yet sent, in order.
func (r *Runner) Send(ctx context.Context, b *Batch) error {
	return r.SendRange(ctx, b, 0, len(b.Items))
}

// SendRange sends items [from, to) that are not sent yet. The gateway rules
// for the declined and the refused customer are set before the first order.
func (r *Runner) SendRange(ctx context.Context, b *Batch, from, to int) error {
	if err := r.declineCustomer(ctx, b.DeclinedCustomer); err != nil {
		return err
	}
	if b.RefusedCustomer != "" {
		err := r.Gateway(ctx, http.MethodPut, "/_fake/behavior",
			map[string]any{"scope": "customer", "id": b.RefusedCustomer, "mode": "fail", "status": RefusedStatus}, nil)
		if err != nil {
			return err
		}
	}
	for i := from; i < to && i < len(b.Items); i++ {
		it := &b.Items[i]
		if it.Sent {
			continue
		}
		var err error
		if it.Kind == KindPoison {
			err = r.publishPoison(ctx, it)
		} else {
			err = r.createOrder(ctx, it)
		}
		if err != nil {
			return fmt.Errorf("send item %d (%s): %w", i, it.Kind, err)
		}
		it.Sent = true
	}
	return nil
}

// declineCustomer sets the fake gateway's rule (idempotent).
func (r *Runner) declineCustomer(ctx context.Context, customer string) error {
	return r.Gateway(ctx, http.MethodPut, "/_fake/behavior",
		map[string]any{"scope": "customer", "id": customer, "mode": "decline", "decline_code": DeclineCode}, nil)
}

// Gateway calls a control endpoint of the fake payment gateway
// (shared/domain/fakegateway: PUT /_fake/behavior, GET /_fake/stats, GET
// /_fake/charges), sending in as JSON when not nil and decoding the answer
// into out when not nil. A non-2xx answer is an error.
func (r *Runner) Gateway(ctx context.Context, method, path string, in, out any) error {
	gw := r.Stack.URL(stack.GatewayName)
	if gw == "" {
		return fmt.Errorf("gateway %s %s: no %s process", method, path, stack.GatewayName)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("gateway %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, gw+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("gateway %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("gateway %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("gateway %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("gateway %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// createOrder POSTs one order, retrying 5xx answers and connection errors
// with the same Idempotency-Key (as a client should) a few times.
func (r *Runner) createOrder(ctx context.Context, it *Item) error {
	body, _ := json.Marshal(map[string]any{
		"customer_id": it.CustomerID,
		"currency":    "EUR",
		"items": []map[string]any{
			{"sku": "SKU-1", "quantity": 2, "unit_price": 1250},
			{"sku": "SKU-2", "quantity": 1, "unit_price": 499},
		},
	})
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(last, ctx.Err())
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond): // client retry backoff
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Stack.URL(OrdersAPI)+"/v1/orders", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", it.IdempotencyKey)
		resp, err := r.cfg.HTTPClient.Do(req)
		if err != nil {
			last = fmt.Errorf("post order: %w", err)
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			last = fmt.Errorf("post order: %s: %s", resp.Status, strings.TrimSpace(string(b)))
			continue
		}
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("post order: %s: %s", resp.Status, strings.TrimSpace(string(b)))
		}
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &v); err != nil || v.ID == "" {
			return fmt.Errorf("post order: answer without id: %s", b)
		}
		it.OrderID = v.ID
		fmt.Fprintf(r.cfg.Log, "sent order %s (customer %s)\n", v.ID, it.CustomerID)
		return nil
	}
	return last
}

// publishPoison publishes a valid order.created CloudEvent for an order
// that does not exist, keyed by its order id like the API's events.
func (r *Runner) publishPoison(ctx context.Context, it *Item) error {
	topic, msg, err := events.NewMessage(ctx, PoisonSource, domain.OrderCreated{
		OrderID:    it.OrderID,
		CustomerID: "customer-poison",
		Items:      []domain.LineItem{{SKU: "SKU-POISON", Quantity: 1, UnitPrice: 100}},
		Currency:   "EUR",
		Total:      100,
		CreatedAt:  time.Now().UTC(),
	}, events.WithID(it.EventID))
	if err != nil {
		return fmt.Errorf("build poison message: %w", err)
	}
	if topic != TopicCreated {
		return fmt.Errorf("poison message topic %q, want %q", topic, TopicCreated)
	}
	if _, err := r.pub.Publish(ctx, topic, msg); err != nil {
		return fmt.Errorf("publish poison message: %w", err)
	}
	fmt.Fprintf(r.cfg.Log, "published poison message %s (order %s never accepted) to %s\n", it.EventID, it.OrderID, topic)
	return nil
}

// Settle polls until the system is quiet: the dispatcher has nothing in
// flight and nothing left to pull, no outbox row is pending and every sent
// order is in a terminal status (shipped, payment_failed or cancelled), on two
// consecutive polls. While outbox rows are pending and the dispatcher is
// quiet (no handler is about to publish them) it calls the outbox relay
// service, at most every RelayEvery, as Cloud Scheduler would. When the
// dispatcher is quiet and nothing is pending for StuckPolls consecutive
// polls but some order is not terminal, nothing can move it any more and
// Settle returns nil (Check reports the order as lost). It returns ctx's
// error, with what was still busy, when ctx ends first.
func (r *Runner) Settle(ctx context.Context, b *Batch) error {
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	var lastRelay time.Time
	settled, stuck := 0, 0
	var why string
	for {
		quiet := r.Stack.Dispatcher.Quiet()
		pending, err := pendingOutbox(ctx, r.db)
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("settle: %w", err)
		}
		open, err := r.openOrders(ctx, b)
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("settle: %w", err)
		}
		switch {
		case quiet && pending == 0 && open == 0:
			settled++
			stuck = 0
		case quiet && pending == 0:
			settled = 0
			stuck++
		default:
			settled, stuck = 0, 0
		}
		if settled >= 2 || stuck >= r.cfg.StuckPolls {
			return nil
		}
		why = fmt.Sprintf("dispatcher quiet=%t, pending outbox rows=%d, orders not terminal=%d", quiet, pending, open)
		// Rows pending while the dispatcher is quiet are not about to be
		// published by a handler (a handler publishes after its commit,
		// before it answers its push): relay them as Cloud Scheduler would.
		if pending > 0 && quiet && time.Since(lastRelay) >= r.cfg.RelayEvery {
			lastRelay = time.Now()
			r.relay(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("settle: %w (%s; busy subscriptions: %s)", ctx.Err(), why, busy(r.Stack))
		case <-tick.C:
		}
	}
}

// relay runs the stack's schedules (the outbox relay service's run);
// failures are only logged (the next poll tries again).
func (r *Runner) relay(ctx context.Context) {
	if err := r.Stack.RunSchedules(ctx); err != nil {
		fmt.Fprintf(r.cfg.Log, "outbox relay: %v\n", err)
		return
	}
	fmt.Fprintf(r.cfg.Log, "outbox rows pending: ran the outbox relay\n")
}

func pendingOutbox(ctx context.Context, db *pgxpool.Pool) (int64, error) {
	st, err := outbox.Status(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("outbox status: %w", err)
	}
	var n int64
	for _, t := range st {
		n += t.Pending
	}
	return n, nil
}

// openOrders counts the batch's sent orders not in a terminal status
// (shipped, payment_failed, cancelled).
func (r *Runner) openOrders(ctx context.Context, b *Batch) (int, error) {
	var ids []string
	for _, it := range b.Items {
		if it.Kind != KindPoison && it.OrderID != "" {
			ids = append(ids, it.OrderID)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var n int
	err := r.db.QueryRow(ctx, `SELECT count(*) FROM orders WHERE id = ANY($1::uuid[]) AND status NOT IN ('shipped', 'payment_failed', 'cancelled')`, ids).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count open orders: %w", err)
	}
	var found int
	if err := r.db.QueryRow(ctx, `SELECT count(*) FROM orders WHERE id = ANY($1::uuid[])`, ids).Scan(&found); err != nil {
		return 0, fmt.Errorf("count orders: %w", err)
	}
	return n + len(ids) - found, nil
}

func busy(s *stack.Stack) string {
	var out []string
	for _, st := range s.Dispatcher.Stats() {
		if !st.Idle {
			out = append(out, fmt.Sprintf("%s(in flight %d, unacked %d)", st.Subscription, st.InFlight, st.Unacked))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}
