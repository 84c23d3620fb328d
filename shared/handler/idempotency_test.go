package handler_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/pgtest"
)

// leaseEnv serves fn in lease mode on store.
func leaseEnv(t *testing.T, store idempotency.LeaseStore, lease time.Duration, fn handler.LeaseFunc[eventstest.Created]) *env {
	t.Helper()
	return newEnvWith(t, handler.Config{LeaseStore: store, Lease: lease}, handler.Lease(fn))
}

func TestLeaseDuplicateIsAckedWithoutEffect(t *testing.T) {
	store, err := idempotency.NewMemoryStore(idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var effects atomic.Int32
	e := leaseEnv(t, store, time.Minute, func(ctx context.Context, c *handler.Claim, ev handler.Event[eventstest.Created]) ([]byte, error) {
		if c.Key().ID == "" || c.Attempt() != 1 {
			t.Errorf("claim key %v attempt %d", c.Key(), c.Attempt())
		}
		effects.Add(1)
		return []byte("charged"), nil
	})
	m := order(t)
	for range 3 {
		if rec := push(t, e.h, m); rec.Code != http.StatusNoContent {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	if effects.Load() != 1 {
		t.Fatalf("effects %d, want 1", effects.Load())
	}
	rec, err := store.Inspect(context.Background(), idempotency.KeyFor("payment", m.Attributes["ce-source"], m.Attributes["ce-id"]))
	if err != nil || string(rec.Result) != "charged" || rec.Status != idempotency.StatusDone {
		t.Fatalf("record %+v err %v", rec, err)
	}
}

func TestLeaseFailureFreesClaimForRedelivery(t *testing.T) {
	store, _ := idempotency.NewMemoryStore(idempotency.Config{})
	var calls atomic.Int32
	e := leaseEnv(t, store, time.Minute, func(context.Context, *handler.Claim, handler.Event[eventstest.Created]) ([]byte, error) {
		if calls.Add(1) <= int32(fastRetry.MaxAttempts) {
			return nil, retry.Transientf("gateway down")
		}
		return nil, nil
	})
	m := order(t)
	if rec := push(t, e.h, m); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("first delivery status %d", rec.Code)
	}
	// The redelivery must not see "in progress": the failed attempt released its claim.
	if rec := push(t, e.h, m); rec.Code != http.StatusNoContent {
		t.Fatalf("redelivery status %d: %s", rec.Code, rec.Body)
	}
}

func TestLeasePanicFreesClaim(t *testing.T) {
	store, _ := idempotency.NewMemoryStore(idempotency.Config{})
	var calls atomic.Int32
	e := leaseEnv(t, store, time.Hour, func(context.Context, *handler.Claim, handler.Event[eventstest.Created]) ([]byte, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return nil, nil
	})
	m := order(t)
	if rec := push(t, e.h, m); rec.Code != http.StatusNoContent {
		// the panic becomes a transient error that frees the claim, retried in process
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if calls.Load() != 2 {
		t.Fatalf("calls %d, want 2 (panic, then retry)", calls.Load())
	}
}

func TestLeaseTamperedPayloadIsDeadLettered(t *testing.T) {
	store, _ := idempotency.NewMemoryStore(idempotency.Config{})
	e := leaseEnv(t, store, time.Minute, func(context.Context, *handler.Claim, handler.Event[eventstest.Created]) ([]byte, error) {
		return nil, nil
	})
	m := order(t)
	if rec := push(t, e.h, m); rec.Code != http.StatusNoContent {
		t.Fatal(rec.Code)
	}
	tampered := m.Clone()
	tampered.Data = []byte(string(m.Data[:len(m.Data)-1]) + ` `) // same id, different bytes
	tampered.Data = append(tampered.Data, '}')
	if rec := push(t, e.h, tampered); rec.Code != http.StatusNoContent {
		t.Fatalf("status %d", rec.Code)
	}
	if dl := e.dlq.Messages(); len(dl) != 1 || !strings.Contains(dl[0].Attributes[deadletter.AttrReason], idempotency.ErrPayloadMismatch.Error()) {
		t.Fatalf("tampered delivery not dead-lettered with the mismatch as reason: %+v", dl)
	}
}

// database is a real PostgreSQL with the kernel's schema, a business
// table, an idempotency store and an outbox relay publishing to a recorder.
type database struct {
	pool    *pgxpool.Pool
	store   *idempotency.Store
	pub     *messaging.Recorder
	publish func(ctx context.Context, ids ...int64) error
}

func newDatabase(t *testing.T) *database {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if err := idempotency.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := outbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE shipments (order_id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	store, err := idempotency.New(pool, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pub := &messaging.Recorder{}
	relay, err := outbox.NewRelay(outbox.Config{Pool: pool, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(ctx context.Context, ids ...int64) error {
		_, err := relay.PublishAfterCommit(ctx, ids...)
		return err
	}
	return &database{pool: pool, store: store, pub: pub, publish: publish}
}

// transactionalEnv wires fn in transactional mode to a real PostgreSQL
// with a business table and the outbox.
func transactionalEnv(t *testing.T, fn handler.TxFunc[eventstest.Created]) (*env, *pgxpool.Pool, *messaging.Recorder) {
	t.Helper()
	db := newDatabase(t)
	e := newEnvWith(t, handler.Config{TxStore: db.store, Publish: db.publish}, handler.Transactional(fn))
	return e, db.pool, db.pub
}

// shipOnce writes a shipment for the thing and returns its message.
func shipOnce(ctx context.Context, tx pgx.Tx, ev handler.Event[eventstest.Created]) ([]handler.Out, error) {
	id := ev.Data.ThingID
	if _, err := tx.Exec(ctx, `INSERT INTO shipments (order_id) VALUES ($1)`, id); err != nil {
		return nil, err
	}
	return []handler.Out{{Topic: "shipment.dispatched", Message: messaging.Message{Data: []byte(id), OrderingKey: id}}}, nil
}

func TestTransactionalConcurrentDuplicatesHaveOneEffect(t *testing.T) {
	e, pool, pub := transactionalEnv(t, shipOnce)
	m := order(t)
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- push(t, e.h, m).Code
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusNoContent {
			t.Fatalf("status %d", c)
		}
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM shipments`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("shipments %d err %v, want exactly 1", n, err)
	}
	if got := len(pub.Messages()); got != 1 {
		t.Fatalf("published %d outbox messages after commit, want 1", got)
	}
}

func TestTransactionalFailureRollsBackEverything(t *testing.T) {
	var calls atomic.Int32
	e, pool, pub := transactionalEnv(t, func(ctx context.Context, tx pgx.Tx, ev handler.Event[eventstest.Created]) ([]handler.Out, error) {
		out, err := shipOnce(ctx, tx, ev)
		if err != nil {
			return nil, err
		}
		if calls.Add(1) <= int32(fastRetry.MaxAttempts) {
			return nil, retry.Transientf("carrier API down")
		}
		return out, nil
	})
	m := order(t)
	if rec := push(t, e.h, m); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d after %d calls; logs %s", rec.Code, calls.Load(), e.logs)
	}
	var n int
	pool.QueryRow(context.Background(), `SELECT count(*) FROM shipments`).Scan(&n)
	if n != 0 || len(pub.Messages()) != 0 {
		t.Fatalf("failed attempts left %d shipments and %d messages", n, len(pub.Messages()))
	}
	if rec := push(t, e.h, m); rec.Code != http.StatusNoContent {
		t.Fatalf("redelivery status %d: %s", rec.Code, rec.Body)
	}
	pool.QueryRow(context.Background(), `SELECT count(*) FROM shipments`).Scan(&n)
	if n != 1 || len(pub.Messages()) != 1 {
		t.Fatalf("after redelivery: %d shipments, %d messages", n, len(pub.Messages()))
	}
}

// TestLeaseSuccessPastTheDeadlineIsRecorded: the function's effect
// succeeded but the request's deadline passed as it returned. Recording the
// success must not depend on that deadline, and the claim must not be
// released: the redelivery is a duplicate, and the effect happens once.
// (Before the fix: 503, then 204 with a second effect.)
func TestLeaseSuccessPastTheDeadlineIsRecorded(t *testing.T) {
	db := newDatabase(t)
	var effects atomic.Int32
	e := newEnvWith(t, handler.Config{LeaseStore: db.store, Timeout: 50 * time.Millisecond, Lease: time.Minute, Retry: retry.Policy{MaxAttempts: 1}},
		handler.Lease(func(ctx context.Context, _ *handler.Claim, _ handler.Event[eventstest.Created]) ([]byte, error) {
			effects.Add(1)
			<-ctx.Done() // the outside call answered just as the deadline passed
			return []byte("charged"), nil
		}))
	m := order(t)
	if rec := push(t, e.h, m); rec.Code != http.StatusNoContent {
		t.Fatalf("first delivery: status %d: %s", rec.Code, rec.Body)
	}
	if rec := push(t, e.h, m); rec.Code != http.StatusNoContent {
		t.Fatalf("redelivery: status %d: %s", rec.Code, rec.Body)
	}
	if n := effects.Load(); n != 1 {
		t.Fatalf("effects %d, want 1", n)
	}
	rec, err := db.store.Inspect(context.Background(), idempotency.KeyFor("payment", m.Attributes["ce-source"], m.Attributes["ce-id"]))
	if err != nil || rec.Status != idempotency.StatusDone || string(rec.Result) != "charged" {
		t.Fatalf("record %+v, err %v", rec, err)
	}
}

// failingComplete is a lease store whose Complete always fails.
type failingComplete struct{ idempotency.LeaseStore }

func (failingComplete) Complete(context.Context, idempotency.Claim, []byte) error {
	return errors.New("connection refused")
}

// TestLeaseSucceededClaimIsNeverReleased: when recording a success fails,
// the claim stays in progress (a redelivery is answered "in progress"
// until the lease expires) instead of being released for a second effect.
func TestLeaseSucceededClaimIsNeverReleased(t *testing.T) {
	db := newDatabase(t)
	var effects atomic.Int32
	e := newEnvWith(t, handler.Config{LeaseStore: failingComplete{db.store}, Lease: time.Minute, AfterBudget: 200 * time.Millisecond, Retry: retry.Policy{MaxAttempts: 1}},
		handler.Lease(func(context.Context, *handler.Claim, handler.Event[eventstest.Created]) ([]byte, error) {
			effects.Add(1)
			return nil, nil
		}))
	m := order(t)
	for i := range 2 {
		if rec := push(t, e.h, m); rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("delivery %d: status %d, want 503", i, rec.Code)
		}
	}
	if n := effects.Load(); n != 1 {
		t.Fatalf("effects %d, want 1: the claim of a succeeded function was released", n)
	}
}

// TestLeaseCompleteInTheFunctionsTransaction: Claim.Complete commits the
// result, the function's writes and its messages together; the messages
// are published after the function returns, and a duplicate finds the
// result.
func TestLeaseCompleteInTheFunctionsTransaction(t *testing.T) {
	db := newDatabase(t)
	var effects atomic.Int32
	e := newEnvWith(t, handler.Config{LeaseStore: db.store, Lease: time.Minute, Publish: db.publish},
		handler.Lease(func(ctx context.Context, c *handler.Claim, ev handler.Event[eventstest.Created]) ([]byte, error) {
			effects.Add(1)
			tx, err := db.pool.Begin(ctx)
			if err != nil {
				return nil, err
			}
			defer tx.Rollback(context.WithoutCancel(ctx))
			out, err := shipOnce(ctx, tx, ev)
			if err != nil {
				return nil, err
			}
			if err := c.Complete(ctx, tx, []byte("shipped"), out...); err != nil {
				return nil, err
			}
			return []byte("ignored"), tx.Commit(ctx)
		}))
	m := order(t)
	for range 2 {
		if rec := push(t, e.h, m); rec.Code != http.StatusNoContent {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	rec, err := db.store.Inspect(context.Background(), idempotency.KeyFor("payment", m.Attributes["ce-source"], m.Attributes["ce-id"]))
	if err != nil || string(rec.Result) != "shipped" || effects.Load() != 1 || len(db.pub.Messages()) != 1 {
		t.Fatalf("record %+v (err %v), effects %d, published %d", rec, err, effects.Load(), len(db.pub.Messages()))
	}
}

// TestLeaseIsRenewedWhileTheFunctionRuns: an attempt that runs for
// several leases keeps its claim: a concurrent redelivery is answered "in
// progress" and the effect happens once. (Before renewal, the lease expired
// under a live attempt and the redelivery repeated the effect.)
func TestLeaseIsRenewedWhileTheFunctionRuns(t *testing.T) {
	db := newDatabase(t)
	var effects atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	const lease = time.Second
	e := newEnvWith(t, handler.Config{LeaseStore: db.store, Lease: lease, Retry: retry.Policy{MaxAttempts: 1}},
		handler.Lease(func(ctx context.Context, _ *handler.Claim, _ handler.Event[eventstest.Created]) ([]byte, error) {
			if effects.Add(1) == 1 {
				close(started)
				<-release
			}
			return []byte("done"), nil
		}))
	m := order(t)
	first := make(chan int)
	go func() { first <- push(t, e.h, m).Code }()
	<-started
	// Wait, on the database's clock, until the original lease would have
	// expired twice over (the condition is time itself), then redeliver.
	for past := false; !past; {
		if err := db.pool.QueryRow(context.Background(),
			`SELECT now() > min(created_at) + $1 * interval '1 microsecond' FROM processed_events`, (2 * lease).Microseconds()).Scan(&past); err != nil {
			t.Fatal(err)
		}
		if !past {
			<-time.After(lease / 10)
		}
	}
	if rec := push(t, e.h, m); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("redelivery during a renewed lease: status %d, want 503 (in progress)", rec.Code)
	}
	close(release)
	if code := <-first; code != http.StatusNoContent {
		t.Fatalf("first delivery: %d", code)
	}
	if n := effects.Load(); n != 1 {
		t.Fatalf("effects %d, want 1", n)
	}
}

// TestLeaseShorterThanTheMinimumIsRefused: a lease renewed every third of
// a few milliseconds would hammer the store.
func TestLeaseShorterThanTheMinimumIsRefused(t *testing.T) {
	store, _ := idempotency.NewMemoryStore(idempotency.Config{})
	_, err := handler.New(handler.Config{Consumer: "c", LeaseStore: store, Lease: 10 * time.Millisecond},
		handler.Lease(func(context.Context, *handler.Claim, handler.Event[events.Payload]) ([]byte, error) { return nil, nil }))
	if err == nil || !strings.Contains(err.Error(), "is shorter than") {
		t.Fatalf("err %v", err)
	}
}

// stalled is a Pub/Sub that never answers: every publish blocks until its
// context ends.
var stalled = messaging.PublisherFunc(func(ctx context.Context, _ string, _ messaging.Message) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
})

// answeredWithin pushes m to h and returns the status, failing t when no
// answer comes before ackDeadline (Pub/Sub would redeliver the message
// while it is still being handled).
func answeredWithin(t *testing.T, h http.Handler, m messaging.Message, ackDeadline time.Duration) int {
	t.Helper()
	done := make(chan int, 1)
	go func() { done <- push(t, h, m).Code }()
	select {
	case code := <-done:
		return code
	case <-time.After(ackDeadline):
		t.Fatalf("no answer within the ack deadline %s while Pub/Sub stalls", ackDeadline)
		return 0
	}
}

// TestAnswerBeforeTheAckDeadlineWhilePubSubStalls: the steps after the
// handler's deadline have their own budget, so with Pub/Sub stalled the
// push is still answered within Timeout + AfterBudget, well before the
// ack deadline. (Before: dead-lettering and publishing after commit ran
// without any deadline.)
func TestAnswerBeforeTheAckDeadlineWhilePubSubStalls(t *testing.T) {
	const ackDeadline = 3 * time.Second
	cfg := func() handler.Config {
		return handler.Config{Timeout: 100 * time.Millisecond, AfterBudget: 300 * time.Millisecond, Retry: retry.Policy{MaxAttempts: 1}}
	}
	t.Run("dead-lettering", func(t *testing.T) {
		c := cfg()
		c.Consumer, c.Logger = "payment", slog.New(slog.DiscardHandler)
		c.DeadLetter = &deadletter.Publisher{Topic: "payment.dlq", Messages: stalled}
		h, err := handler.New(c, stateless(func(context.Context, *events.Incoming) error { return retry.Permanentf("bad order") }))
		if err != nil {
			t.Fatal(err)
		}
		// Not dead-lettered, so not acknowledged: Pub/Sub redelivers later.
		if code := answeredWithin(t, h, order(t), ackDeadline); code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", code)
		}
	})
	t.Run("publishing after commit", func(t *testing.T) {
		db := newDatabase(t)
		c := cfg()
		c.TxStore = db.store
		c.Publish = func(ctx context.Context, _ ...int64) error {
			_, err := stalled(ctx, "t", messaging.Message{})
			return err
		}
		e := newEnvWith(t, c, handler.Transactional(shipOnce))
		// Committed, so acknowledged; the relay publishes the row later.
		if code := answeredWithin(t, e.h, order(t), ackDeadline); code != http.StatusNoContent {
			t.Fatalf("status %d, want 204", code)
		}
		var pending int
		if err := db.pool.QueryRow(context.Background(), "SELECT count(*) FROM outbox WHERE published_at IS NULL").Scan(&pending); err != nil || pending != 1 {
			t.Fatalf("pending outbox rows %d (err %v), want 1 for the relay", pending, err)
		}
	})
}
