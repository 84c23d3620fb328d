package handler_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/pgtest"
)

func TestLeaseDuplicateIsAckedWithoutEffect(t *testing.T) {
	store, err := idempotency.NewMemoryStore(idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var effects atomic.Int32
	e := newEnv(t, func(ctx context.Context, in *events.Incoming) error {
		if c, ok := handler.LeaseClaim(ctx); !ok || c.Key.ID == "" {
			t.Errorf("no lease claim in ctx")
		}
		effects.Add(1)
		handler.LeaseResult(ctx, []byte("charged"))
		return nil
	}, handler.Lease("payment", store, time.Minute, nil))
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
	e := newEnv(t, func(ctx context.Context, in *events.Incoming) error {
		if calls.Add(1) <= int32(fastRetry.MaxAttempts) {
			return retry.Transientf("gateway down")
		}
		return nil
	}, handler.Lease("payment", store, time.Minute, nil))
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
	e := newEnv(t, func(ctx context.Context, in *events.Incoming) error {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return nil
	}, handler.Lease("payment", store, time.Hour, nil))
	m := order(t)
	if rec := push(t, e.h, m); rec.Code != http.StatusNoContent {
		// the inner Recover turns the panic into a transient error, retried in process
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if calls.Load() != 2 {
		t.Fatalf("calls %d, want 2 (panic, then retry)", calls.Load())
	}
}

func TestLeaseTamperedPayloadIsDeadLettered(t *testing.T) {
	store, _ := idempotency.NewMemoryStore(idempotency.Config{})
	e := newEnv(t, func(context.Context, *events.Incoming) error { return nil }, handler.Lease("payment", store, time.Minute, nil))
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
	if dl := e.dlq.Messages(); len(dl) != 1 || !errors.Is(idempotency.ErrPayloadMismatch, idempotency.ErrPayloadMismatch) {
		t.Fatalf("tampered delivery not dead-lettered: %d", len(dl))
	}
}

// transactionalEnv wires the Transactional middleware to a real PostgreSQL
// with a business table and the outbox.
func transactionalEnv(t *testing.T, fn func(ctx context.Context, in *events.Incoming) error) (*env, *pgxpool.Pool, *messaging.Recorder) {
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
	e := newEnv(t, fn, handler.Transactional("shipment", store, nil, publish, nil))
	return e, pool, pub
}

func shipOnce(ctx context.Context, in *events.Incoming) error {
	tx := handler.Tx(ctx)
	if tx == nil {
		return errors.New("no transaction in ctx")
	}
	oc := in.Payload.(events.OrderCreated)
	if _, err := tx.Exec(ctx, `INSERT INTO shipments (order_id) VALUES ($1)`, oc.OrderID); err != nil {
		return err
	}
	id, err := outbox.Write(ctx, tx, "shipment.dispatched", messaging.Message{Data: []byte(oc.OrderID), OrderingKey: oc.OrderID})
	if err != nil {
		return err
	}
	handler.AfterCommit(ctx, id)
	return nil
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
	e, pool, pub := transactionalEnv(t, func(ctx context.Context, in *events.Incoming) error {
		if err := shipOnce(ctx, in); err != nil {
			return err
		}
		if calls.Add(1) <= int32(fastRetry.MaxAttempts) {
			return retry.Transientf("carrier API down")
		}
		return nil
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
