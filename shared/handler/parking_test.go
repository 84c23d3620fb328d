package handler_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/events"
	"example.com/platform/shared/events/eventstest"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/parking"
	"example.com/platform/shared/postgres"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/pushtest"
)

// orderedSub is the subscription of delivery, consumed with ordering.
const (
	orderedSub  = "payment--thing.created"
	maxAttempts = 5
)

// parkEnv is a transactional consumer of thing events on an ordered
// subscription, with a real PostgreSQL: each applied event is a row of
// `applied`, in the order it was applied. Events whose id is poisoned fail
// permanently; block, when set, is called before applying an event.
type parkEnv struct {
	*env
	pool  *pgxpool.Pool
	store *parking.Store

	mu       sync.Mutex
	poisoned map[string]bool
	failing  map[string]bool // transient failure
	block    func(id string)
}

func newParkEnv(t *testing.T) *parkEnv {
	t.Helper()
	ctx := context.Background()
	db := newDatabase(t)
	if err := postgres.Migrate(ctx, db.pool, parking.Component, parking.Migrations()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `CREATE TABLE applied (seq bigserial PRIMARY KEY, thing text NOT NULL, event_id text NOT NULL UNIQUE, type text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	p := &parkEnv{pool: db.pool, store: parking.New(db.pool), poisoned: map[string]bool{}, failing: map[string]bool{}}
	fn := func(ctx context.Context, tx pgx.Tx, ev handler.Event[events.Payload]) ([]handler.Out, error) {
		id := ev.Event.ID()
		p.mu.Lock()
		poisoned, failing, block := p.poisoned[id], p.failing[id], p.block
		p.mu.Unlock()
		if block != nil {
			block(id)
		}
		if poisoned {
			return nil, retry.Permanentf("poisoned event %s", id)
		}
		if failing {
			return nil, retry.Transientf("dependency down for %s", id)
		}
		_, err := tx.Exec(ctx, `INSERT INTO applied (thing, event_id, type) VALUES ($1, $2, $3)`, ev.Event.Subject(), id, ev.Event.Type())
		return nil, err
	}
	p.env = newEnvWith(t, handler.Config{
		TxStore:  db.store,
		Ordering: map[string]handler.OrderedSubscription{orderedSub: {Topic: eventstest.TopicCreated, MaxDeliveryAttempts: maxAttempts}},
		Parking:  p.store,
	}, handler.Transactional(fn))
	return p
}

func (p *parkEnv) set(m map[string]bool, id string, v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m[id] = v
}

// thing returns the messages of a thing's life: created, then n dones.
func thing(t *testing.T, n int) []messaging.Message {
	t.Helper()
	c := eventstest.NewCreated()
	_, m, err := events.NewMessage(context.Background(), "//things.example.com/tests", c)
	if err != nil {
		t.Fatal(err)
	}
	out := []messaging.Message{m}
	for i := range n {
		_, d, err := events.NewMessage(context.Background(), "//things.example.com/tests",
			eventstest.Done{ThingID: c.ThingID, At: eventstest.T0.Add(time.Duration(i+1) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func id(m messaging.Message) string { return m.Attributes["ce-id"] }

var msgSeq struct {
	sync.Mutex
	n int
}

// deliver pushes m as message id mid, attempt n of orderedSub.
func deliverAttempt(t *testing.T, h http.Handler, m messaging.Message, mid string, attempt int) *httptest.ResponseRecorder {
	t.Helper()
	d := events.Delivery{Subscription: "projects/p/subscriptions/" + orderedSub, MessageID: mid, OrderingKey: m.OrderingKey, Attempt: attempt, PublishTime: time.Now().UTC()}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, pushtest.Binary(t, "http://fn/", m, d))
	return rec
}

// deliver pushes m (first attempt) under a fresh message id and expects
// code.
func deliver(t *testing.T, h http.Handler, m messaging.Message, code int) {
	t.Helper()
	msgSeq.Lock()
	msgSeq.n++
	mid := strconv.Itoa(msgSeq.n)
	msgSeq.Unlock()
	if rec := deliverAttempt(t, h, m, mid, 1); rec.Code != code {
		t.Fatalf("delivery of %s: status %d, want %d: %s", m.Attributes["ce-type"], rec.Code, code, rec.Body)
	}
}

// replayed is m as an operator's replay carries it.
func replayed(m messaging.Message) messaging.Message {
	attrs := map[string]string{handler.AttrReplayID: "r-1"}
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	m.Attributes = attrs
	return m
}

// applied lists the event ids applied for thing, in order.
func (p *parkEnv) applied(t *testing.T, thing string) []string {
	t.Helper()
	rows, err := p.pool.Query(context.Background(), `SELECT event_id FROM applied WHERE thing = $1 ORDER BY seq`, thing)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func (p *parkEnv) wantApplied(t *testing.T, thing string, want ...messaging.Message) {
	t.Helper()
	got := p.applied(t, thing)
	if len(got) != len(want) {
		t.Fatalf("applied %d events %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != id(want[i]) {
			t.Fatalf("applied[%d] = %s, want %s (out of order or missing): %v", i, got[i], id(want[i]), got)
		}
	}
}

func (p *parkEnv) head(t *testing.T, m messaging.Message) parking.Head {
	t.Helper()
	h, _, err := p.store.Get(context.Background(), parking.Key{Subscription: orderedSub, OrderingKey: m.OrderingKey})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (p *parkEnv) wantReleased(t *testing.T, m messaging.Message) {
	t.Helper()
	if _, ok, err := p.store.Lookup(context.Background(), parking.Key{Subscription: orderedSub, OrderingKey: m.OrderingKey}); err != nil || ok {
		t.Fatalf("key %s still parked (err %v)", m.OrderingKey, err)
	}
}

func TestDeadLetterParksKeyAndReplayAppliesInOrder(t *testing.T) {
	p := newParkEnv(t)
	life := thing(t, 2)
	created, done1, done2 := life[0], life[1], life[2]
	p.set(p.poisoned, id(created), true)

	deliver(t, p.h, created, http.StatusNoContent)
	if n := len(p.dlq.Messages()); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
	deliver(t, p.h, done1, http.StatusNoContent)
	deliver(t, p.h, done2, http.StatusNoContent)
	p.wantApplied(t, created.OrderingKey) // nothing applied behind the dead letter

	// Other keys flow on.
	other := thing(t, 0)[0]
	deliver(t, p.h, other, http.StatusNoContent)
	p.wantApplied(t, other.OrderingKey, other)

	// Redeliveries of the dead letter and of a parked event change nothing.
	deliver(t, p.h, created, http.StatusNoContent)
	deliver(t, p.h, done1, http.StatusNoContent)
	h := p.head(t, created)
	if h.Head.EventID != id(created) || h.Parked != 2 || h.State != parking.Parked || h.DeadLetterID == "" || h.Topic != eventstest.TopicCreated {
		t.Fatalf("head %+v", h)
	}
	if n := len(p.dlq.Messages()); n != 1 {
		t.Fatalf("%d dead letters after redeliveries, want 1", n)
	}
	if logs := p.logs.String(); !strings.Contains(logs, `"msg":"event parked behind a dead letter"`) || strings.Contains(logs, `"level":"ERROR"`) {
		t.Fatalf("logs: %s", p.logs)
	}

	// The cause is fixed; the operator replays the dead letter.
	p.set(p.poisoned, id(created), false)
	deliver(t, p.h, replayed(created), http.StatusNoContent)
	p.wantApplied(t, created.OrderingKey, created, done1, done2)
	p.wantReleased(t, created)

	// Later deliveries of the key are applied normally, duplicates once.
	deliver(t, p.h, done2, http.StatusNoContent)
	deliver(t, p.h, replayed(created), http.StatusNoContent)
	p.wantApplied(t, created.OrderingKey, created, done1, done2)
}

func TestDiscardAppliesParkedEventsWithoutTheHead(t *testing.T) {
	p := newParkEnv(t)
	life := thing(t, 2)
	p.set(p.poisoned, id(life[0]), true)
	for _, m := range life {
		deliver(t, p.h, m, http.StatusNoContent)
	}
	ctx := context.Background()
	key := parking.Key{Subscription: orderedSub, OrderingKey: life[0].OrderingKey}
	if _, err := p.store.RequestRelease(ctx, parking.Release{Key: key, Action: parking.ActionDiscard, By: "alice"}); err == nil {
		t.Fatal("discard without a reason accepted")
	}
	rel, err := p.store.RequestRelease(ctx, parking.Release{Key: key, Action: parking.ActionDiscard, By: "alice", Reason: "created by a test script"})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Trigger == nil || rel.Trigger.EventID != id(life[1]) {
		t.Fatalf("trigger %+v, want the first parked event", rel.Trigger)
	}
	deliver(t, p.h, replayed(rel.Trigger.Message(key)), http.StatusNoContent)
	p.wantApplied(t, key.OrderingKey, life[1], life[2])
	p.wantReleased(t, life[0])
	var reason, by string
	if err := p.pool.QueryRow(ctx, `SELECT reason, released_by FROM parked_releases WHERE ordering_key = $1 AND action = 'discard'`, key.OrderingKey).Scan(&reason, &by); err != nil || reason != "created by a test script" || by != "alice" {
		t.Fatalf("audit %q %q %v", reason, by, err)
	}
}

func TestSecondDeadLetterOfAParkedKeyBecomesItsHead(t *testing.T) {
	p := newParkEnv(t)
	life := thing(t, 2)
	created, done1, done2 := life[0], life[1], life[2]
	p.set(p.poisoned, id(created), true)
	p.set(p.poisoned, id(done1), true)
	for _, m := range life {
		deliver(t, p.h, m, http.StatusNoContent)
	}
	p.set(p.poisoned, id(created), false)
	deliver(t, p.h, replayed(created), http.StatusNoContent)
	p.wantApplied(t, created.OrderingKey, created)
	h := p.head(t, created)
	if h.Head.EventID != id(done1) || h.Parked != 1 || h.State != parking.Parked || h.DeadLetters != 2 {
		t.Fatalf("head after the second dead letter: %+v", h)
	}
	if n := len(p.dlq.Messages()); n != 2 {
		t.Fatalf("%d dead letters, want 2", n)
	}
	// A replay of the first head now is a duplicate: it is not the head.
	deliver(t, p.h, replayed(created), http.StatusNoContent)
	p.wantApplied(t, created.OrderingKey, created)

	p.set(p.poisoned, id(done1), false)
	deliver(t, p.h, replayed(done1), http.StatusNoContent)
	p.wantApplied(t, created.OrderingKey, created, done1, done2)
	p.wantReleased(t, created)
}

func TestRedeliveryDuringReleaseWaitsAndAppliesOnce(t *testing.T) {
	p := newParkEnv(t)
	life := thing(t, 2)
	created, done1 := life[0], life[1]
	p.set(p.poisoned, id(created), true)
	for _, m := range life {
		deliver(t, p.h, m, http.StatusNoContent)
	}
	p.set(p.poisoned, id(created), false)

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	p.mu.Lock()
	p.block = func(eid string) {
		if eid == id(done1) {
			once.Do(func() { close(entered); <-release })
		}
	}
	p.mu.Unlock()

	first := make(chan int)
	go func() { first <- deliverAttempt(t, p.h, replayed(created), "r1", 1).Code }()
	<-entered // the release is applying done1
	// Pub/Sub redelivers the replay (its ack deadline passed) while the
	// first delivery releases the key: it must neither apply nor wait.
	if rec := deliverAttempt(t, p.h, replayed(created), "r1", 2); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("concurrent redelivery: status %d, want 503: %s", rec.Code, rec.Body)
	}
	close(release)
	if code := <-first; code != http.StatusNoContent {
		t.Fatalf("releasing delivery: status %d", code)
	}
	p.wantApplied(t, created.OrderingKey, life...)
	p.wantReleased(t, created)
	if rec := deliverAttempt(t, p.h, replayed(created), "r1", 3); rec.Code != http.StatusNoContent {
		t.Fatalf("late redelivery: status %d", rec.Code)
	}
	p.wantApplied(t, created.OrderingKey, life...)
}

func TestCrashMidReleaseIsFinishedByTheRedelivery(t *testing.T) {
	p := newParkEnv(t)
	ctx := context.Background()
	life := thing(t, 3)
	p.set(p.poisoned, id(life[0]), true)
	for _, m := range life {
		deliver(t, p.h, m, http.StatusNoContent)
	}
	key := parking.Key{Subscription: orderedSub, OrderingKey: life[0].OrderingKey}
	// A process released the key and died after applying the head and the
	// first parked event, before removing that event from the parked ones,
	// holding the drain lease.
	if _, err := p.pool.Exec(ctx, `INSERT INTO applied (thing, event_id, type) VALUES ($1, $2, 'x'), ($1, $3, 'x')`, key.OrderingKey, id(life[0]), id(life[1])); err != nil {
		t.Fatal(err)
	}
	store, err := idempotency.New(p.pool, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range life[:2] {
		k := idempotency.KeyFor("payment", m.Attributes["ce-source"], id(m))
		if _, err := store.Transactional(ctx, k, idempotency.HashPayload(m.Data), func(context.Context, pgx.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.store.HeadResolved(ctx, key); err != nil {
		t.Fatal(err)
	}
	const crashedLease = 300 * time.Millisecond
	if ok, err := p.store.StartDrain(ctx, key, "crashed-process", crashedLease); !ok || err != nil {
		t.Fatalf("take the lease: %v %v", ok, err)
	}
	// The redelivery of the replay is refused while the dead process's
	// lease runs, then finishes the release once it expired.
	if rec := deliverAttempt(t, p.h, replayed(life[0]), "r1", 2); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("redelivery under the crashed lease: %d", rec.Code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 3; ; attempt++ {
		rec := deliverAttempt(t, p.h, replayed(life[0]), "r1", min(attempt, maxAttempts-1))
		if rec.Code == http.StatusNoContent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("release never resumed: %d %s", rec.Code, rec.Body)
		}
		time.Sleep(crashedLease / 4) // Pub/Sub's redelivery backoff
	}
	var got []string
	rows, _ := p.pool.Query(ctx, `SELECT event_id FROM applied WHERE thing = $1 ORDER BY seq`, key.OrderingKey)
	got, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	if len(got) != 4 || got[0] != id(life[0]) || got[1] != id(life[1]) || got[2] != id(life[2]) || got[3] != id(life[3]) {
		t.Fatalf("applied %v: each event once, in order", got)
	}
	p.wantReleased(t, life[0])
}

func TestLastAttemptOfATransientFailureParks(t *testing.T) {
	p := newParkEnv(t)
	life := thing(t, 1)
	p.set(p.failing, id(life[0]), true)
	if rec := deliverAttempt(t, p.h, life[0], "m1", maxAttempts-1); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("attempt %d: %d, want 503", maxAttempts-1, rec.Code)
	}
	if rec := deliverAttempt(t, p.h, life[0], "m1", maxAttempts); rec.Code != http.StatusNoContent {
		t.Fatalf("last attempt: %d, want 204 (dead-lettered by the handler)", rec.Code)
	}
	dl := p.dlq.Messages()
	if len(dl) != 1 || !strings.Contains(dl[0].Message.Attributes[deadletter.AttrReason], "last of 5 delivery attempts") {
		t.Fatalf("dead letters %+v", dl)
	}
	if h := p.head(t, life[0]); h.Head.EventID != id(life[0]) {
		t.Fatalf("head %+v", h)
	}
	deliver(t, p.h, life[1], http.StatusNoContent)
	p.wantApplied(t, life[0].OrderingKey)
}

func TestUndecodableEventOfAParkedKeyIsParkedThenDeadLettered(t *testing.T) {
	p := newParkEnv(t)
	life := thing(t, 1)
	p.set(p.poisoned, id(life[0]), true)
	deliver(t, p.h, life[0], http.StatusNoContent)
	bad := messaging.Message{Data: []byte(`{"thing_id": 7}`), OrderingKey: life[0].OrderingKey, Attributes: map[string]string{}}
	for k, v := range life[1].Attributes {
		bad.Attributes[k] = v
	}
	bad.Attributes["ce-id"] = "bad-1"
	deliver(t, p.h, bad, http.StatusNoContent)
	deliver(t, p.h, life[1], http.StatusNoContent)
	if n := len(p.dlq.Messages()); n != 1 {
		t.Fatalf("the undecodable event of a parked key must be parked, not dead-lettered: %d dead letters", n)
	}
	p.set(p.poisoned, id(life[0]), false)
	deliver(t, p.h, replayed(life[0]), http.StatusNoContent)
	p.wantApplied(t, life[0].OrderingKey, life[0])
	if h := p.head(t, life[0]); h.Head.EventID != "bad-1" || h.Parked != 1 {
		t.Fatalf("head %+v: the undecodable event must be the new head", h)
	}
	if n := len(p.dlq.Messages()); n != 2 {
		t.Fatalf("%d dead letters, want 2", n)
	}
}

func TestUnorderedSubscriptionDeadLettersWithoutParking(t *testing.T) {
	p := newParkEnv(t)
	life := thing(t, 1)
	p.set(p.poisoned, id(life[0]), true)
	for _, m := range life {
		rec := httptest.NewRecorder()
		d := events.Delivery{Subscription: "projects/p/subscriptions/analytics--thing.created", MessageID: id(m), OrderingKey: m.OrderingKey, Attempt: 1}
		p.h.ServeHTTP(rec, pushtest.Binary(t, "http://fn/", m, d))
		if rec.Code != http.StatusNoContent {
			t.Fatalf("status %d", rec.Code)
		}
	}
	p.wantApplied(t, life[0].OrderingKey, life[1])
	p.wantReleased(t, life[0])
}
