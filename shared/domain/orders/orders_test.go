package orders_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func setup(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if err := orders.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	if _, err := pool.Exec(ctx, `INSERT INTO orders (id, customer_id, currency, total, items) VALUES ($1, 'c', 'EUR', 100, '[]')`, id); err != nil {
		t.Fatal(err)
	}
	return pool, id
}

func TestCanMove(t *testing.T) {
	for _, c := range []struct {
		a, b orders.Status
		ok   bool
	}{
		{orders.Pending, orders.Paid, true}, {orders.Pending, orders.PaymentFailed, true}, {orders.Paid, orders.Shipped, true},
		{orders.Pending, orders.Shipped, false}, {orders.Shipped, orders.Paid, false}, {orders.PaymentFailed, orders.Paid, false},
		{orders.Paid, orders.Pending, false}, {orders.PaymentFailed, orders.Shipped, false},
		{orders.Pending, orders.Cancelled, true}, {orders.Paid, orders.Cancelled, true}, {orders.PaymentFailed, orders.Cancelled, true},
		{orders.Shipped, orders.Cancelled, false}, {orders.Cancelled, orders.Cancelled, false},
		{orders.Cancelled, orders.Paid, false}, {orders.Cancelled, orders.Shipped, false}, {orders.Cancelled, orders.Pending, false},
	} {
		if got := orders.CanMove(c.a, c.b); got != c.ok {
			t.Errorf("CanMove(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

func TestAdvanceNeverMovesBackwards(t *testing.T) {
	ctx := context.Background()
	pool, id := setup(t)
	steps := []struct {
		to    orders.Status
		moved bool
	}{
		{orders.Paid, true},
		{orders.Paid, false},    // duplicate payment.processed
		{orders.Shipped, true},  //
		{orders.Paid, false},    // late payment.processed after shipping
		{orders.Shipped, false}, // duplicate shipment
	}
	for i, s := range steps {
		res, err := orders.Advance(ctx, pool, id, s.to, "e")
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if res.Moved != s.moved {
			t.Fatalf("step %d to %s: moved=%v, want %v (from %s)", i, s.to, res.Moved, s.moved, res.From)
		}
	}
	if st, _ := orders.Get(ctx, pool, id); st != orders.Shipped {
		t.Fatalf("status %s", st)
	}
	h, err := orders.History(ctx, pool, id)
	if err != nil || !slices.Equal(h, []orders.Status{orders.Paid, orders.Shipped}) {
		t.Fatalf("history %v err %v", h, err)
	}
}

func TestAdvanceIllegalAndMissing(t *testing.T) {
	ctx := context.Background()
	pool, id := setup(t)
	if _, err := orders.Advance(ctx, pool, id, orders.Shipped, ""); err == nil {
		// pending -> shipped skips payment: not late, not legal
		t.Fatal("pending -> shipped allowed")
	} else if !errors.Is(err, orders.ErrIllegalAdvance) || !retry.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	if _, err := orders.Advance(ctx, pool, id, orders.PaymentFailed, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := orders.Advance(ctx, pool, id, orders.Shipped, ""); !errors.Is(err, orders.ErrIllegalAdvance) {
		t.Fatalf("payment_failed -> shipped: %v", err)
	}
	// A payment that succeeded after it failed contradicts the history: it
	// is dead-lettered for a person to look at, and the status stays.
	if res, err := orders.Advance(ctx, pool, id, orders.Paid, ""); !errors.Is(err, orders.ErrIllegalAdvance) || res.Moved {
		t.Fatalf("paid after payment_failed: moved=%v err=%v", res.Moved, err)
	}
	if st, _ := orders.Get(ctx, pool, id); st != orders.PaymentFailed {
		t.Fatalf("status %s, want payment_failed", st)
	}
	if _, err := orders.Advance(ctx, pool, uuid.NewString(), orders.Paid, ""); !errors.Is(err, orders.ErrNotFound) || !retry.IsPermanent(err) {
		t.Fatalf("missing order: %v", err)
	}
}

func TestConcurrentAdvanceMovesOnce(t *testing.T) {
	ctx := context.Background()
	pool, id := setup(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	moved := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := orders.Advance(ctx, pool, id, orders.Paid, "")
			if err != nil {
				t.Error(err)
				return
			}
			if res.Moved {
				mu.Lock()
				moved++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if moved != 1 {
		t.Fatalf("moved %d times, want 1", moved)
	}
	if h, _ := orders.History(ctx, pool, id); len(h) != 1 {
		t.Fatalf("history %v", h)
	}
}

// TestCancel walks every status an order can be cancelled from, and
// checks that a cancelled order stays cancelled: a second cancellation is a
// no-op, every other status fails with ErrCancelled (also an illegal
// advance), and the row's CHECK constraint accepts the status.
func TestCancel(t *testing.T) {
	ctx := context.Background()
	for _, before := range [][]orders.Status{nil, {orders.Paid}, {orders.PaymentFailed}} {
		pool, id := setup(t)
		for _, s := range before {
			if _, err := orders.Advance(ctx, pool, id, s, "e"); err != nil {
				t.Fatal(err)
			}
		}
		res, err := orders.Advance(ctx, pool, id, orders.Cancelled, "cancel")
		want := orders.Pending
		if len(before) > 0 {
			want = before[0]
		}
		if err != nil || !res.Moved || res.From != want {
			t.Fatalf("cancel from %s: %+v, %v", want, res, err)
		}
		if res, err := orders.Advance(ctx, pool, id, orders.Cancelled, "cancel"); err != nil || res.Moved || res.From != orders.Cancelled {
			t.Fatalf("second cancel: %+v, %v", res, err)
		}
		for _, to := range []orders.Status{orders.Paid, orders.PaymentFailed, orders.Shipped} {
			res, err := orders.Advance(ctx, pool, id, to, "late")
			if !errors.Is(err, orders.ErrCancelled) || !errors.Is(err, orders.ErrIllegalAdvance) || !retry.IsPermanent(err) ||
				res.Moved || res.From != orders.Cancelled {
				t.Fatalf("%s after cancel: %+v, %v", to, res, err)
			}
		}
		if st, _ := orders.Get(ctx, pool, id); st != orders.Cancelled {
			t.Fatalf("status %s", st)
		}
		h, err := orders.History(ctx, pool, id)
		if err != nil || !slices.Equal(h, append(slices.Clone(before), orders.Cancelled)) {
			t.Fatalf("history %v err %v", h, err)
		}
	}
}

// TestShippedOrderCannotBeCancelled: shipped -> cancelled is illegal, not
// late; the error is not ErrCancelled and the order stays shipped.
func TestShippedOrderCannotBeCancelled(t *testing.T) {
	ctx := context.Background()
	pool, id := setup(t)
	for _, s := range []orders.Status{orders.Paid, orders.Shipped} {
		if _, err := orders.Advance(ctx, pool, id, s, "e"); err != nil {
			t.Fatal(err)
		}
	}
	res, err := orders.Advance(ctx, pool, id, orders.Cancelled, "cancel")
	if !errors.Is(err, orders.ErrIllegalAdvance) || errors.Is(err, orders.ErrCancelled) || res.From != orders.Shipped || res.Moved {
		t.Fatalf("cancel a shipped order: %+v, %v", res, err)
	}
	if st, _ := orders.Get(ctx, pool, id); st != orders.Shipped {
		t.Fatalf("status %s", st)
	}
}

// TestCancelAndShipSerialise races a cancellation against a shipment of
// one paid order, each in its own transaction: the row lock lets exactly
// one of them win, and the loser sees the winner's status.
func TestCancelAndShipSerialise(t *testing.T) {
	ctx := context.Background()
	for range 10 {
		pool, id := setup(t)
		if _, err := orders.Advance(ctx, pool, id, orders.Paid, "e"); err != nil {
			t.Fatal(err)
		}
		results := make([]orders.Result, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, to := range []orders.Status{orders.Cancelled, orders.Shipped} {
			wg.Go(func() {
				<-start
				tx, err := pool.Begin(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				defer tx.Rollback(ctx)
				results[i], errs[i] = orders.Advance(ctx, tx, id, to, "race")
				if errs[i] == nil {
					errs[i] = tx.Commit(ctx)
				}
			})
		}
		close(start)
		wg.Wait()
		st, _ := orders.Get(ctx, pool, id)
		switch st {
		case orders.Cancelled:
			if !results[0].Moved || !errors.Is(errs[1], orders.ErrCancelled) {
				t.Fatalf("cancel won: %+v %v", results, errs)
			}
		case orders.Shipped:
			if !results[1].Moved || !errors.Is(errs[0], orders.ErrIllegalAdvance) || results[0].From != orders.Shipped {
				t.Fatalf("shipment won: %+v %v", results, errs)
			}
		default:
			t.Fatalf("status %s after the race: %+v %v", st, results, errs)
		}
	}
}

func TestStatusCheckConstraint(t *testing.T) {
	pool, id := setup(t)
	if _, err := pool.Exec(context.Background(), `UPDATE orders SET status = 'lost' WHERE id = $1`, id); err == nil {
		t.Fatal("unknown status accepted")
	}
	if _, err := pool.Exec(context.Background(), `UPDATE orders SET status = 'cancelled' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
}
