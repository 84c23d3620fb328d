package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// Kinds of faults, as counted in the report (Report.Faults).
const (
	FaultDuplicate           = "duplicate_push"            // a push delivered twice, one after the other
	FaultDuplicateConcurrent = "duplicate_push_concurrent" // a push delivered twice at the same time
	FaultTransient           = "transient_503"             // a delivery attempt answered 503 without reaching the function
	FaultPoison              = "poison_event"              // an event whose body was replaced by a poison body
	FaultGateway5xx          = "gateway_5xx_burst"         // the gateway answers 503 for a while
	FaultGatewayTimeout      = "gateway_timeout_burst"     // the gateway hangs for a while (the client times out)
	FaultBreakerOpen         = "breaker_opened"            // the payment function's breaker opened (from its log)
	FaultPublishDelay        = "publish_delay"             // a Pub/Sub publish slowed by up to 300 ms
	FaultPublishPause        = "publish_pause"             // a Pub/Sub publish paused longer than idle_in_transaction_session_timeout
	FaultPublishFail         = "publish_fail"              // a Pub/Sub publish failed (UNAVAILABLE)
	FaultPGRestart           = "postgres_restart"          // PostgreSQL restarted (pg_ctl restart -m fast)
	FaultSigKill             = "sigkill"                   // a function process SIGKILLed (then restarted)
	FaultTableAway           = "table_away"                // the shipments table renamed away for TableAway
	FaultTableAwayRetry      = "table_away_retry"          // a shipment delivery answered 503 with error_class schema/permission (from its log)
)

// Kinds lists every fault kind in report order; a complete run fires each.
var Kinds = []string{FaultDuplicate, FaultDuplicateConcurrent, FaultTransient, FaultPoison, FaultGateway5xx, FaultGatewayTimeout,
	FaultBreakerOpen, FaultPublishDelay, FaultPublishPause, FaultPublishFail, FaultPGRestart, FaultSigKill, FaultTableAway, FaultTableAwayRetry}

// Rates of the per-push and per-publish faults.
const (
	DuplicateRate   = 0.35 // of first delivery attempts; half of them concurrent
	TransientRate   = 0.05 // of delivery attempts (only attempts 1-2 of a message)
	PoisonRate      = 0.01 // of order.created and payment.processed events
	DeclineRate     = 0.02 // of orders: sent for the customer the gateway declines
	PublishSlowRate = 0.05 // of publishes outside a publish window: delayed up to 300 ms
	// In a publish window, publishes are paused PublishPause (PausePart of
	// them) or failed (FailPart).
	PausePart = 0.3
	FailPart  = 0.3
)

// Durations of the timed faults.
const (
	// TableAway is how long the shipments table stays away at least; it
	// stays away longer (at most TableAwayMax) until the shipment function
	// has answered TableAwayHits deliveries with a schema error, so the
	// fault cannot miss (e.g. while the payment breaker is open and no
	// payment.processed flows).
	TableAway       = 10 * time.Second
	TableAwayMax    = 60 * time.Second
	TableAwayHits   = 5
	GatewayBurst    = 3 * time.Second // each of the 5xx and the timeout part
	PublishWindow   = 8 * time.Second
	PublishPause    = 2500 * time.Millisecond
	IdleTxTimeout   = "2s" // idle_in_transaction_session_timeout of the stack's PostgreSQL
	maxInjectedFail = 2    // injected 503s only on attempts 1..maxInjectedFail
)

// Action is one timed fault of the plan: it fires when At orders have
// been sent (so the plan does not depend on the machine's speed).
type Action struct {
	At     int
	Kind   string
	Target string        // process name for sigkill
	Hold   time.Duration // how long the fault lasts (restart after, table back after, ...)
}

func (a Action) String() string {
	s := fmt.Sprintf("after order %d: %s", a.At, a.Kind)
	if a.Target != "" {
		s += " " + a.Target
	}
	if a.Hold > 0 {
		s += " for " + a.Hold.String()
	}
	return s
}

// Plan is every timed fault of a run, derived from the seed alone.
type Plan struct {
	Seed    uint64
	Actions []Action
}

// NewPlan derives the timed faults from seed: one SIGKILL of every
// function process, one PostgreSQL restart, the shipments table away
// once, two gateway bursts (5xx, then timeouts) and three publish
// windows, each at an order index between 5% and 75% of orders.
func NewPlan(seed uint64, orders int, functions []string) Plan {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	at := func() int { return orders/20 + rng.IntN(max(orders*7/10, 1)) }
	p := Plan{Seed: seed}
	for _, f := range functions {
		p.Actions = append(p.Actions, Action{At: at(), Kind: FaultSigKill, Target: f, Hold: time.Duration(200+rng.IntN(1800)) * time.Millisecond})
	}
	p.Actions = append(p.Actions, Action{At: at(), Kind: FaultPGRestart})
	p.Actions = append(p.Actions, Action{At: at(), Kind: FaultTableAway, Hold: TableAway})
	for range 2 {
		p.Actions = append(p.Actions, Action{At: at(), Kind: FaultGateway5xx, Hold: GatewayBurst})
	}
	for range 3 {
		p.Actions = append(p.Actions, Action{At: at(), Kind: FaultPublishFail, Target: "window", Hold: PublishWindow})
	}
	sort.SliceStable(p.Actions, func(i, j int) bool { return p.Actions[i].At < p.Actions[j].At })
	return p
}

// dice is the seeded source of every per-push and per-publish decision.
// Which push gets which draw depends on timing; the sequence of draws
// does not.
type dice struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newDice(seed uint64) *dice {
	return &dice{rng: rand.New(rand.NewPCG(seed^0x5851f42d4c957f2d, seed))}
}

func (d *dice) float() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.Float64()
}

func (d *dice) intn(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.IntN(n)
}
