package orders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/postgres"
	"example.com/platform/shared/retry"
)

// Errors of Create.
var (
	// ErrIdempotencyKeyReused: the idempotency key belongs to an order
	// created from a different request (its request hash differs).
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with a different request")
	// ErrInvalidOrder: a NewOrder is missing something Create needs.
	ErrInvalidOrder = errors.New("invalid order")
)

// NewOrder is an order to create. The caller validates the business rules
// (domain.OrderCreated.Validate); Create only checks what the schema needs.
type NewOrder struct {
	ID         string // canonical UUID, chosen by the caller
	CustomerID string
	Currency   string
	Items      []domain.LineItem
	Total      int64
	// CreatedAt is stored with PostgreSQL's microsecond precision; pass a
	// value truncated to microseconds (Truncate(time.Microsecond)) so the
	// caller's copy equals the stored one. Zero means now.
	CreatedAt time.Time
	// EventID is recorded on the first ("pending") history row: the id of
	// the order.created event announcing the order. Optional.
	EventID string
	// IdempotencyKey, when set, makes Create idempotent per key; it then
	// needs RequestHash, a digest of the canonical request that created
	// the order.
	IdempotencyKey string
	RequestHash    []byte
}

// Order is an order as stored, with its status history.
type Order struct {
	ID         string
	CustomerID string
	Currency   string
	Items      []domain.LineItem
	Total      int64
	Status     Status
	CreatedAt  time.Time // UTC
	UpdatedAt  time.Time // UTC
	// History lists every status the order took, oldest first; an order
	// made by Create starts with a Pending entry at CreatedAt.
	History        []Change
	IdempotencyKey string // empty when created without one
	RequestHash    []byte
}

// Change is one entry of an order's status history.
type Change struct {
	Status  Status
	EventID string // the event that caused it; empty when unknown
	At      time.Time
}

const createSQL = `
WITH ins AS (
  INSERT INTO orders (id, customer_id, currency, total, items, status, idempotency_key, request_hash, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5::jsonb, 'pending', NULLIF($6::text, ''), $7, $8, $8)
  ON CONFLICT (idempotency_key) DO NOTHING
  RETURNING id
), hist AS (
  INSERT INTO order_status_history (order_id, status, event_id, at)
  SELECT id, 'pending', NULLIF($9::text, ''), $8 FROM ins
)
SELECT count(*) FROM ins`

// Create inserts o as a pending order with its first history row, inside
// q: give it the caller's transaction so the order commits together with
// its outbox row. It returns the order and created = true.
//
// When o.IdempotencyKey was already used, nothing is written: if the stored
// request hash equals o.RequestHash, Create returns the stored order (as it
// is now) and created = false; otherwise it returns a permanent error
// wrapping ErrIdempotencyKeyReused. A concurrent Create with the same key
// waits on the key's unique index until the other transaction ends, then
// sees its order; this needs READ COMMITTED (PostgreSQL's default), under
// which each statement sees rows committed before it started. A missing
// field is a permanent ErrInvalidOrder.
func Create(ctx context.Context, q postgres.Querier, o NewOrder) (Order, bool, error) {
	if err := o.check(); err != nil {
		return Order{}, false, err
	}
	if o.CreatedAt.IsZero() {
		o.CreatedAt = time.Now()
	}
	o.CreatedAt = o.CreatedAt.UTC().Truncate(time.Microsecond)
	items, err := json.Marshal(o.Items)
	if err != nil {
		return Order{}, false, fmt.Errorf("encode items: %w", err)
	}
	var n int
	err = q.QueryRow(ctx, createSQL, o.ID, o.CustomerID, o.Currency, o.Total, string(items),
		o.IdempotencyKey, o.RequestHash, o.CreatedAt, o.EventID).Scan(&n)
	if err != nil {
		return Order{}, false, fmt.Errorf("create order %s: %w", o.ID, err)
	}
	if n == 1 {
		return Order{
			ID: o.ID, CustomerID: o.CustomerID, Currency: o.Currency, Items: o.Items, Total: o.Total,
			Status: Pending, CreatedAt: o.CreatedAt, UpdatedAt: o.CreatedAt,
			History:        []Change{{Status: Pending, EventID: o.EventID, At: o.CreatedAt}},
			IdempotencyKey: o.IdempotencyKey, RequestHash: o.RequestHash,
		}, true, nil
	}
	// The key is taken (an order with a NULL key never conflicts).
	prev, err := load(ctx, q, "o.idempotency_key = $1", o.IdempotencyKey)
	if errors.Is(err, ErrNotFound) {
		// Deleted between the insert and the read: let the client retry.
		return Order{}, false, retry.Transientf("create order: idempotency key %q conflicted, but its order is gone", o.IdempotencyKey)
	}
	if err != nil {
		return Order{}, false, fmt.Errorf("load order of idempotency key: %w", err)
	}
	if !bytes.Equal(prev.RequestHash, o.RequestHash) {
		return Order{}, false, retry.Permanent(fmt.Errorf("%w: order %s", ErrIdempotencyKeyReused, prev.ID))
	}
	return prev, false, nil
}

func (o NewOrder) check() error {
	var missing []string
	if u, err := uuid.Parse(o.ID); err != nil || len(o.ID) != 36 || u == uuid.Nil {
		missing = append(missing, "id (canonical UUID)")
	}
	if o.CustomerID == "" {
		missing = append(missing, "customer id")
	}
	if len(o.Currency) != 3 {
		missing = append(missing, "currency")
	}
	if len(o.Items) == 0 {
		missing = append(missing, "items")
	}
	if o.Total < 0 {
		missing = append(missing, "total >= 0")
	}
	if o.IdempotencyKey != "" && len(o.RequestHash) == 0 {
		missing = append(missing, "request hash (with an idempotency key)")
	}
	if len(missing) > 0 {
		return retry.Permanent(fmt.Errorf("%w: need %v", ErrInvalidOrder, missing))
	}
	return nil
}

// Load returns order id with its status history, read in one statement (a
// consistent snapshot). An unknown id, or one that is not a UUID, is
// ErrNotFound.
func Load(ctx context.Context, q postgres.Querier, id string) (Order, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Order{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return load(ctx, q, "o.id = $1", id)
}

const loadSQL = `
SELECT o.id::text, o.customer_id, o.currency, o.total, o.items::text, o.status,
       o.created_at, o.updated_at, coalesce(o.idempotency_key, ''), o.request_hash,
       coalesce(h.statuses, '{}'), coalesce(h.event_ids, '{}'), coalesce(h.ats, '{}')
FROM orders o
LEFT JOIN LATERAL (
  SELECT array_agg(status ORDER BY id) AS statuses,
         array_agg(coalesce(event_id, '') ORDER BY id) AS event_ids,
         array_agg(at ORDER BY id) AS ats
  FROM order_status_history WHERE order_id = o.id
) h ON true
WHERE `

func load(ctx context.Context, q postgres.Querier, where string, arg any) (Order, error) {
	var (
		o                  Order
		items              string
		statuses, eventIDs []string
		ats                []time.Time
	)
	err := q.QueryRow(ctx, loadSQL+where, arg).Scan(&o.ID, &o.CustomerID, &o.Currency, &o.Total, &items, &o.Status,
		&o.CreatedAt, &o.UpdatedAt, &o.IdempotencyKey, &o.RequestHash, &statuses, &eventIDs, &ats)
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, fmt.Errorf("%w: %v", ErrNotFound, arg)
	}
	if err != nil {
		return Order{}, fmt.Errorf("load order: %w", err)
	}
	if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
		return Order{}, fmt.Errorf("load order %s: decode items: %w", o.ID, err)
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	if len(statuses) != len(eventIDs) || len(statuses) != len(ats) {
		return Order{}, fmt.Errorf("load order %s: inconsistent history", o.ID)
	}
	o.History = make([]Change, len(statuses))
	for i := range statuses {
		o.History[i] = Change{Status: Status(statuses[i]), EventID: eventIDs[i], At: ats[i].UTC()}
	}
	return o, nil
}
