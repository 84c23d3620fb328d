// Package orders holds the order status machine shared by the orders API and
// the functions that move an order forward, and the orders schema.
//
//	pending ──► paid ──► shipped
//	   └──────► payment_failed
//
//	pending, paid, payment_failed ──► cancelled
//
// Status only moves forward. An event that arrives late or twice (a
// redelivered payment.processed after the order shipped) finds the order
// already at or past its target and changes nothing; Advance reports that
// instead of failing, so the event is acknowledged.
//
// Cancelled is terminal and is entered from pending, paid or
// payment_failed, never from shipped. Once an order is cancelled, no other
// status can be entered: Advance fails with ErrCancelled (which also
// matches ErrIllegalAdvance), and callers that may legitimately meet a
// cancelled order (the shipment of a payment that raced the cancellation)
// treat it as a reason to skip, not as an error. Every change locks the
// order's row, so a cancellation and a shipment of one order serialise:
// exactly one of them wins.
package orders

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/postgres"
	"example.com/platform/shared/retry"
)

// Status of an order.
type Status string

// Statuses.
const (
	Pending       Status = "pending"
	Paid          Status = "paid"
	PaymentFailed Status = "payment_failed"
	Shipped       Status = "shipped"
	Cancelled     Status = "cancelled"
)

// rank orders statuses along the machine; terminal siblings share a rank.
// Cancelled ranks last so that no status counts as "past" it: moving a
// shipped order to cancelled is illegal, not late.
var rank = map[Status]int{Pending: 0, Paid: 1, PaymentFailed: 1, Shipped: 2, Cancelled: 3}

// from lists the statuses each status may be entered from.
var from = map[Status][]Status{
	Paid:          {Pending},
	PaymentFailed: {Pending},
	Shipped:       {Paid},
	Cancelled:     {Pending, Paid, PaymentFailed},
}

// Errors of Advance.
var (
	ErrNotFound       = errors.New("order not found")
	ErrInvalidStatus  = errors.New("invalid order status")
	ErrIllegalAdvance = errors.New("illegal status change")
	// ErrCancelled: the order is cancelled and cannot enter another
	// status. Advance wraps it together with ErrIllegalAdvance.
	ErrCancelled = errors.New("order is cancelled")
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { _, ok := rank[s]; return ok }

// CanMove reports whether an order in status a may move to b.
func CanMove(a, b Status) bool {
	for _, s := range from[b] {
		if s == a {
			return true
		}
	}
	return false
}

// Result is what Advance did.
type Result struct {
	Moved bool   // the status changed to the target
	From  Status // the status before (the current status when not moved)
}

// Advance moves order id to status to inside q (typically the handler's
// transaction), recording the change in order_status_history with eventID.
// It locks the order's row until q's transaction ends. When the order is
// already at to, or past it (a late or duplicate event), nothing changes
// and Moved is false. A change the machine forbids that is not explained by
// lateness (payment_failed -> shipped, shipped -> cancelled) is a permanent
// ErrIllegalAdvance; leaving a cancelled order is a permanent error
// matching both ErrIllegalAdvance and ErrCancelled. Result.From is set on
// these errors too. A missing order is a permanent ErrNotFound, because an
// order is committed in the same transaction as the event announcing it.
func Advance(ctx context.Context, q postgres.Querier, id string, to Status, eventID string) (Result, error) {
	if !to.Valid() || to == Pending {
		return Result{}, retry.Permanent(fmt.Errorf("%w: cannot advance to %q", ErrInvalidStatus, to))
	}
	var prev Status
	err := q.QueryRow(ctx, `
WITH cur AS (SELECT status FROM orders WHERE id = $1 FOR UPDATE),
upd AS (
  UPDATE orders SET status = $2, updated_at = now()
  WHERE id = $1 AND status = ANY($3::text[])
  RETURNING 1
),
hist AS (
  INSERT INTO order_status_history (order_id, status, event_id)
  SELECT $1, $2, NULLIF($4, '') FROM upd
)
SELECT status FROM cur`, id, string(to), statusStrings(from[to]), eventID).Scan(&prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, retry.Permanent(fmt.Errorf("%w: %s", ErrNotFound, id))
	}
	if err != nil {
		return Result{}, fmt.Errorf("advance order %s to %s: %w", id, to, err)
	}
	return verdict(id, prev, to)
}

// verdict is Advance's answer for an order that was in prev, asked to
// become to.
func verdict(id string, prev, to Status) (Result, error) {
	switch {
	case CanMove(prev, to):
		return Result{Moved: true, From: prev}, nil
	case prev == to:
		return Result{From: prev}, nil // duplicate: nothing to do
	case prev == Cancelled:
		return Result{From: prev}, retry.Permanent(fmt.Errorf("%w: %w: order %s cannot become %s", ErrIllegalAdvance, ErrCancelled, id, to))
	case rank[prev] > rank[to]:
		return Result{From: prev}, nil // late: nothing to do
	}
	return Result{From: prev}, retry.Permanent(fmt.Errorf("%w: order %s is %s, cannot become %s", ErrIllegalAdvance, id, prev, to))
}

// Get returns the status of order id.
func Get(ctx context.Context, q postgres.Querier, id string) (Status, error) {
	var s Status
	err := q.QueryRow(ctx, `SELECT status FROM orders WHERE id = $1`, id).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	return s, err
}

// History returns the statuses order id took, oldest first.
func History(ctx context.Context, q postgres.Querier, id string) ([]Status, error) {
	rows, err := q.Query(ctx, `SELECT status FROM order_status_history WHERE order_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[Status])
}

func statusStrings(ss []Status) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or updates the orders schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.Migrate(ctx, pool, "orders", Migrations())
}

// Migrations is the orders schema (the *.sql files, named in order), for
// a function's app.Migration{Name: "orders", FS: orders.Migrations()}.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // a constant, valid path
	}
	return sub
}
