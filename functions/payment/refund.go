package payment

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/retry"
)

// ErrNotCancelled: an order.cancelled event arrived for an order that is
// not cancelled. The orders API commits the status with the event, so
// the event is forged or replayed from elsewhere; refunding on its word
// would refund a live order. Permanent.
var ErrNotCancelled = errors.New("order is not cancelled")

// Statuses of the result stored with the claim of an order.cancelled
// event.
const (
	RefundStatusRefunded = "refunded"
	RefundStatusNothing  = "nothing_to_refund"
)

// refundOutcome is what the lease claim of an order.cancelled event stores
// for later duplicates.
type refundOutcome struct {
	Status  string        `json:"status"`
	Refunds []refundEntry `json:"refunds,omitempty"`
}

type refundEntry struct {
	RefundID  string `json:"refund_id"`
	PaymentID string `json:"payment_id"`
	Reference string `json:"reference"`
	Amount    int64  `json:"amount"`
}

// charged is an approved payment that has not been refunded.
type charged struct {
	PaymentID string
	Reference string
	Amount    int64
	Currency  string
}

// refund is a refund the gateway executed, to record.
type refund struct {
	charged
	ID        string
	Key       string
	Reference string
}

// HandleCancelled processes the order.cancelled event eventID. The event
// follows its order's order.created on the same ordering key, so the
// charge, if any, is recorded by then.
//
// Every approved payment of the order with a non-zero amount and no refund
// yet is refunded in full through the gateway, with RefundKey as the
// idempotency key, so a refund repeated after a crash, a timeout or a lost
// lease is not made twice. The refunds are then recorded in one
// transaction: a refunds row each, a payment.refunded outbox row each, and
// the completion of the lease claim. An order with nothing to refund (never
// charged, declined, or skipped because the API cancelled it first) is
// acknowledged with a result saying so. Gateway and database errors keep
// their retry class; a missing order and an order that is not cancelled
// (ErrNotCancelled) are permanent.
func (s *Service) HandleCancelled(ctx context.Context, claim *handler.Claim, eventID string, c domain.OrderCancelled) ([]byte, error) {
	log := s.logger().With("order_id", c.OrderID)
	if err := s.checkCancelled(ctx, c.OrderID); err != nil {
		return nil, err
	}
	due, err := s.unrefunded(ctx, c.OrderID)
	if err != nil {
		return nil, err
	}
	if len(due) == 0 {
		log.InfoContext(ctx, "order cancelled without an approved payment; nothing to refund", "previous_status", c.PreviousStatus)
		return mustJSON(refundOutcome{Status: RefundStatusNothing}), nil
	}
	done := make([]refund, 0, len(due))
	for _, p := range due {
		key := RefundKey(claim.Key(), p.PaymentID)
		res, err := s.Gateway.Refund(ctx, RefundRequest{
			IdempotencyKey: key, OrderID: c.OrderID, ChargeReference: p.Reference, Amount: p.Amount, Currency: p.Currency,
		})
		if err != nil {
			return nil, fmt.Errorf("refund payment %s of order %s: %w", p.PaymentID, c.OrderID, err)
		}
		done = append(done, refund{charged: p, ID: RefundID(claim.Key().Consumer, key), Key: key, Reference: res.Reference})
	}
	return nil, s.recordRefunds(ctx, claim, eventID, c.OrderID, done)
}

// checkCancelled fails unless order id exists and is cancelled.
func (s *Service) checkCancelled(ctx context.Context, id string) error {
	status, err := orders.Get(ctx, s.DB, id)
	if errors.Is(err, orders.ErrNotFound) {
		return retry.Permanent(fmt.Errorf("get order %s: %w", id, err))
	}
	if err != nil {
		return fmt.Errorf("get order %s: %w", id, err)
	}
	if status != orders.Cancelled {
		return retry.Permanent(fmt.Errorf("%w: order.cancelled for order %s, which is %s: forged or replayed from elsewhere", ErrNotCancelled, id, status))
	}
	return nil
}

// unrefunded lists the approved payments of order id with a non-zero
// amount and no refund, oldest first.
func (s *Service) unrefunded(ctx context.Context, id string) ([]charged, error) {
	rows, err := s.DB.Query(ctx, `
SELECT p.id::text, p.gateway_reference, p.amount, p.currency
FROM payments p
WHERE p.order_id = $1 AND p.status = 'approved' AND p.amount > 0
  AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id)
ORDER BY p.created_at, p.id`, id)
	if err != nil {
		return nil, fmt.Errorf("list payments of order %s: %w", id, err)
	}
	due, err := pgx.CollectRows(rows, pgx.RowToStructByPos[charged])
	if err != nil {
		return nil, fmt.Errorf("list payments of order %s: %w", id, err)
	}
	return due, nil
}

// recordRefunds writes the refunds and their payment.refunded events and
// completes the claim, in one transaction.
func (s *Service) recordRefunds(ctx context.Context, claim *handler.Claim, eventID, orderID string, done []refund) error {
	now := s.now().UTC()
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // no-op after Commit

	outcome := refundOutcome{Status: RefundStatusRefunded}
	var out []handler.Out
	for _, r := range done {
		tag, err := tx.Exec(ctx, `
INSERT INTO refunds (id, idempotency_key, payment_id, order_id, amount, currency, gateway_reference, event_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT DO NOTHING`,
			r.ID, r.Key, r.PaymentID, orderID, r.Amount, r.Currency, r.Reference, eventID)
		if err != nil {
			return fmt.Errorf("insert refund of payment %s: %w", r.PaymentID, err)
		}
		outcome.Refunds = append(outcome.Refunds, refundEntry{RefundID: r.ID, PaymentID: r.PaymentID, Reference: r.Reference, Amount: r.Amount})
		if tag.RowsAffected() == 0 {
			continue // recorded before: announced then
		}
		o, err := handler.Emit(ctx, Source, domain.PaymentRefunded{
			OrderID: orderID, PaymentID: r.PaymentID, RefundReference: r.Reference,
			Amount: r.Amount, Currency: r.Currency, RefundedAt: now,
		}, events.WithID(r.ID))
		if err != nil {
			return err
		}
		out = append(out, o)
		s.logger().InfoContext(ctx, "payment refunded", "order_id", orderID, "payment_id", r.PaymentID, "refund_id", r.ID, "amount", r.Amount)
	}
	if err := claim.Complete(ctx, tx, mustJSON(outcome), out...); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit refunds: %w", err)
	}
	return nil
}

// RefundKey is the idempotency key of the refund of payment paymentID
// made for the order.cancelled event whose claim has key: the claim's key
// (CloudEvent source/id) and the payment id, so that every attempt at the
// event asks the gateway for the same refund, and the refunds of two
// payments of one order never share a key.
func RefundKey(key idempotency.Key, paymentID string) string {
	return key.ID + "/refund/" + paymentID
}

// refundNamespace scopes RefundID's name-based UUIDs.
var refundNamespace = uuid.MustParse("a3f0c2d4-7b1e-4c59-8e2a-1d6b9f0e4c37")

// RefundID is the id of the refund made under idempotency key refundKey by
// consumer: a name-based UUID, also the ce-id of its payment.refunded
// event.
func RefundID(consumer, refundKey string) string {
	return uuid.NewSHA1(refundNamespace, []byte(consumer+"\x00"+refundKey)).String()
}
