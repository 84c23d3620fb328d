package orders_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/pgtest"
)

func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := orders.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func newOrder(key string, hash string) orders.NewOrder {
	return orders.NewOrder{
		ID:         uuid.NewString(),
		CustomerID: "cust-1",
		Currency:   "EUR",
		Items:      []domain.LineItem{{SKU: "A-1", Quantity: 2, UnitPrice: 150}, {SKU: "B-2", Quantity: 1, UnitPrice: 0}},
		Total:      300,
		CreatedAt:  time.Date(2026, 5, 1, 12, 30, 45, 123456789, time.FixedZone("x", 3600)),
		EventID:    uuid.NewString(),

		IdempotencyKey: key,
		RequestHash:    []byte(hash),
	}
}

func TestCreateThenLoad(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	in := newOrder("", "")
	got, created, err := orders.Create(ctx, pool, in)
	if err != nil || !created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	want := in.CreatedAt.UTC().Truncate(time.Microsecond)
	if !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC || got.Status != orders.Pending {
		t.Fatalf("created %+v", got)
	}
	loaded, err := orders.Load(ctx, pool, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded, got) {
		t.Fatalf("Load differs from Create's result:\n load   %+v\n create %+v", loaded, got)
	}
	if len(loaded.History) != 1 || loaded.History[0] != (orders.Change{Status: orders.Pending, EventID: in.EventID, At: want}) {
		t.Fatalf("history %+v", loaded.History)
	}

	// Advancing shows up in the history and the status.
	if _, err := orders.Advance(ctx, pool, in.ID, orders.Paid, "ev-paid"); err != nil {
		t.Fatal(err)
	}
	loaded, err = orders.Load(ctx, pool, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Status != orders.Paid || len(loaded.History) != 2 || loaded.History[1].Status != orders.Paid ||
		loaded.History[1].EventID != "ev-paid" || !loaded.UpdatedAt.After(loaded.CreatedAt) {
		t.Fatalf("after advance: %+v", loaded)
	}
}

func TestLoadUnknownAndMalformed(t *testing.T) {
	pool := migrated(t)
	for _, id := range []string{uuid.NewString(), "not-a-uuid", ""} {
		if _, err := orders.Load(context.Background(), pool, id); !errors.Is(err, orders.ErrNotFound) {
			t.Errorf("Load(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestCreateIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	first, created, err := orders.Create(ctx, pool, newOrder("k1", "h1"))
	if err != nil || !created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	// Same key, same hash: the first order, nothing written.
	again := newOrder("k1", "h1")
	got, created, err := orders.Create(ctx, pool, again)
	if err != nil || created {
		t.Fatalf("replay: created=%v err=%v", created, err)
	}
	if !reflect.DeepEqual(got, first) {
		t.Fatalf("replay returned %+v, want %+v", got, first)
	}
	// Same key, other hash: refused, permanent.
	_, created, err = orders.Create(ctx, pool, newOrder("k1", "h2"))
	if !errors.Is(err, orders.ErrIdempotencyKeyReused) || !retry.IsPermanent(err) || created {
		t.Fatalf("reuse: created=%v err=%v", created, err)
	}
	// Another key and orders without keys are independent.
	for _, o := range []orders.NewOrder{newOrder("k2", "h1"), newOrder("", ""), newOrder("", "")} {
		if _, created, err := orders.Create(ctx, pool, o); err != nil || !created {
			t.Fatalf("independent order: created=%v err=%v", created, err)
		}
	}
	var n, h int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_status_history)`).Scan(&n, &h); err != nil {
		t.Fatal(err)
	}
	if n != 4 || h != 4 {
		t.Fatalf("%d orders and %d history rows, want 4 and 4", n, h)
	}
}

func TestConcurrentCreateSameKeyMakesOneOrder(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	const n = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ids     = map[string]int{}
		created int
	)
	for range n {
		wg.Go(func() {
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer tx.Rollback(ctx)
			o, c, err := orders.Create(ctx, tx, newOrder("same", "h"))
			if err != nil {
				t.Error(err)
				return
			}
			if err := tx.Commit(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[o.ID]++
			if c {
				created++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(ids) != 1 || created != 1 {
		t.Fatalf("ids %v, created %d: want one order created once", ids, created)
	}
}

func TestCreateRollsBackWithTheTransaction(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := newOrder("k", "h")
	if _, _, err := orders.Create(ctx, tx, o); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := orders.Load(ctx, pool, o.ID); !errors.Is(err, orders.ErrNotFound) {
		t.Fatalf("rolled-back order: %v", err)
	}
	// The key is free again.
	if _, created, err := orders.Create(ctx, pool, newOrder("k", "other")); err != nil || !created {
		t.Fatalf("created=%v err=%v", created, err)
	}
}

func TestCreateRejectsIncompleteOrders(t *testing.T) {
	pool := migrated(t)
	for name, mut := range map[string]func(*orders.NewOrder){
		"bad id":         func(o *orders.NewOrder) { o.ID = "x" },
		"nil id":         func(o *orders.NewOrder) { o.ID = uuid.Nil.String() },
		"no customer":    func(o *orders.NewOrder) { o.CustomerID = "" },
		"no items":       func(o *orders.NewOrder) { o.Items = nil },
		"key no hash":    func(o *orders.NewOrder) { o.IdempotencyKey, o.RequestHash = "k", nil },
		"bad currency":   func(o *orders.NewOrder) { o.Currency = "EURO" },
		"negative total": func(o *orders.NewOrder) { o.Total = -1 },
	} {
		o := newOrder("", "")
		mut(&o)
		if _, _, err := orders.Create(context.Background(), pool, o); !errors.Is(err, orders.ErrInvalidOrder) || !retry.IsPermanent(err) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
