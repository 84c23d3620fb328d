package chaos

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/platform/shared/manifest"
	"example.com/platform/tools/localstack/dispatch"
)

// Subscriptions the run looks at.
var (
	subPayment   = manifest.SubscriptionID("payment", "order.created")
	subShipment  = manifest.SubscriptionID("shipment", "payment.processed")
	subAnalytics = manifest.SubscriptionID("analytics", "shipment.dispatched")
	// poisonSubs are the subscriptions whose events may be poisoned: a
	// poisoned order.created (to payment) or payment.processed (to
	// shipment) stops its order, and is accounted for by its archive entry.
	poisonSubs = map[string]bool{subPayment: true, subShipment: true}
)

// relayProcess is the outbox relay's process name.
const relayProcess = "relay"

// poison is one poisoned event.
type poison struct {
	Subscription, EventID, OrderID string
}

// injector decides every per-push and per-publish fault from the seeded
// dice and counts what it did. Safe for concurrent use.
type injector struct {
	dice   *dice
	window atomic.Int32 // > 0 while a publish window is open

	mu        sync.Mutex
	counts    map[string]int
	poisoned  map[string]poison // by subscription + message id (a message id is per topic)
	events    map[string]poison // by subscription + event id
	firstPush map[string]time.Time
	byProcess map[string]map[string]int // publish faults per function process
	messages  int                       // first delivery attempts
}

func newInjector(seed uint64) *injector {
	return &injector{dice: newDice(seed), counts: map[string]int{}, poisoned: map[string]poison{},
		events: map[string]poison{}, firstPush: map[string]time.Time{}, byProcess: map[string]map[string]int{}}
}

func (in *injector) count(kind string, n int) {
	in.mu.Lock()
	in.counts[kind] += n
	in.mu.Unlock()
}

// countPublish counts a publish fault in total and per process.
func (in *injector) countPublish(process, kind string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.counts[kind]++
	if in.byProcess[process] == nil {
		in.byProcess[process] = map[string]int{}
	}
	in.byProcess[process][kind]++
}

// Counts returns the faults fired so far, by kind.
func (in *injector) Counts() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]int, len(in.counts))
	for k, v := range in.counts {
		out[k] = v
	}
	return out
}

// fault is the dispatcher's Config.Fault hook.
func (in *injector) fault(p dispatch.Push) dispatch.Fault {
	now := time.Now()
	in.mu.Lock()
	defer in.mu.Unlock()
	if p.Attempt == 1 {
		in.messages++
	}
	msgKey := p.Subscription + "\x00" + p.MessageID
	if _, ok := in.poisoned[msgKey]; ok {
		in.first(p, now)
		return dispatch.Fault{Poison: true}
	}
	if p.Attempt == 1 && poisonSubs[p.Subscription] && in.dice.float() < PoisonRate {
		pz := poison{Subscription: p.Subscription, EventID: p.Attributes["ce-id"], OrderID: p.OrderingKey}
		in.poisoned[msgKey] = pz
		in.events[p.Subscription+"\x00"+pz.EventID] = pz
		in.counts[FaultPoison]++
		in.first(p, now)
		return dispatch.Fault{Poison: true}
	}
	if p.Attempt <= maxInjectedFail && in.dice.float() < TransientRate {
		in.counts[FaultTransient]++
		return dispatch.Fault{Fail: true}
	}
	in.first(p, now)
	if p.Attempt == 1 && in.dice.float() < DuplicateRate {
		if in.dice.float() < 0.5 {
			in.counts[FaultDuplicateConcurrent]++
			return dispatch.Fault{Duplicate: true, Concurrent: true}
		}
		in.counts[FaultDuplicate]++
		return dispatch.Fault{Duplicate: true}
	}
	return dispatch.Fault{}
}

// first records the start of the first push of a key on a subscription
// (under mu).
func (in *injector) first(p dispatch.Push, now time.Time) {
	if p.OrderingKey == "" {
		return
	}
	k := p.Subscription + "\x00" + p.OrderingKey
	if _, ok := in.firstPush[k]; !ok {
		in.firstPush[k] = now
	}
}

func (in *injector) firstPushOf(sub, key string) (time.Time, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	t, ok := in.firstPush[sub+"\x00"+key]
	return t, ok
}

// publish is the stack's PubSubFault hook: it slows or fails the
// functions' (and the relay's) Publish calls.
func (in *injector) publish(ctx context.Context, process, method string) error {
	if !strings.HasSuffix(method, "/Publish") {
		return nil
	}
	sleep := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	x := in.dice.float()
	if in.window.Load() > 0 {
		switch {
		case x < PausePart:
			in.countPublish(process, FaultPublishPause)
			return sleep(PublishPause)
		case x < PausePart+FailPart/2:
			in.countPublish(process, FaultPublishFail)
			return status.Error(codes.Unavailable, "chaos: injected publish failure")
		case x < PausePart+FailPart:
			in.countPublish(process, FaultPublishFail)
			if process == relayProcess {
				return status.Error(codes.Unavailable, "chaos: injected publish failure")
			}
			// Not retried by the client: the after-commit publish gives
			// up at once and leaves its outbox row to the relay, whose
			// publishes the window hits too.
			return status.Error(codes.FailedPrecondition, "chaos: injected publish failure (not retried by the client)")
		}
		return nil
	}
	if x < PublishSlowRate {
		in.countPublish(process, FaultPublishDelay)
		return sleep(time.Duration(in.dice.intn(300)+1) * time.Millisecond)
	}
	return nil
}

// logCounter passes the stack's log through and counts the payment
// function's breaker opening.
type logCounter struct {
	out io.Writer
	in  *injector
}

func (w logCounter) Write(b []byte) (int, error) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.Contains(line, []byte("circuit breaker state change")) &&
			(bytes.Contains(line, []byte(`"to":"open"`)) || bytes.Contains(line, []byte("to=open"))) {
			w.in.count(FaultBreakerOpen, 1)
		}
		if bytes.HasPrefix(line, []byte("shipment ")) && (bytes.Contains(line, []byte(`"error_class":"schema"`)) || bytes.Contains(line, []byte(`"error_class":"permission"`))) {
			w.in.count(FaultTableAwayRetry, 1)
		}
	}
	return w.out.Write(b)
}
