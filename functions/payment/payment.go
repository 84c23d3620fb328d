// Package payment is the payment function: it consumes the order.created
// topic, which carries an order's lifecycle events in order. For
// order.created it charges the customer through the payment gateway and
// emits payment.processed or payment.failed; for order.cancelled it refunds
// the order's approved payment, if there is one, and emits
// payment.refunded. See README.md for the gateway contract and the
// configuration.
package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/postgres"
	"example.com/platform/shared/retry"
)

// Source is the CloudEvents source of the events the function emits.
const Source = "//example.com/payment"

// ReasonDeclined is the PaymentFailed reason of a payment the gateway
// declined; the gateway's own code travels in DeclineCode.
const ReasonDeclined = "card_declined"

// ChargeRequest asks the gateway to charge a customer for an order.
type ChargeRequest struct {
	// IdempotencyKey makes the charge safe to repeat: the gateway answers
	// every request with the same key with the outcome of the first one.
	// It is the event's idempotency key (CloudEvent source + "/" + id).
	IdempotencyKey string
	OrderID        string
	CustomerID     string
	// Amount in minor units of Currency.
	Amount   int64
	Currency string
}

// ChargeResult is the gateway's answer. A decline is a result, not an
// error.
type ChargeResult struct {
	Approved bool
	// Reference is the gateway's id of an approved charge.
	Reference string
	// DeclineCode is the gateway's reason for a decline, e.g.
	// "insufficient_funds".
	DeclineCode string
}

// RefundRequest asks the gateway to refund an approved charge.
type RefundRequest struct {
	// IdempotencyKey makes the refund safe to repeat, like a charge's (see
	// RefundKey).
	IdempotencyKey string
	OrderID        string
	// ChargeReference is the gateway's reference of the approved charge
	// (ChargeResult.Reference).
	ChargeReference string
	// Amount to refund, in minor units of Currency (the charge's).
	Amount   int64
	Currency string
}

// RefundResult is the gateway's answer to a refund it executed.
type RefundResult struct {
	// Reference is the gateway's id of the refund.
	Reference string
}

// Gateway charges customers and refunds charges. Charge returns a result
// for an approval or a decline, Refund one for an executed refund; each
// returns an error only when the outcome is unknown or the request was
// refused: transient errors (timeouts, 5xx, 429, an open circuit breaker)
// mean "try again later with the same key", permanent ones (other 4xx such
// as an unknown charge or a refund larger than the charge, a malformed
// answer) that repeating cannot help. Implementations must be safe for
// concurrent use.
type Gateway interface {
	Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error)
	Refund(ctx context.Context, req RefundRequest) (RefundResult, error)
}

// DB is the database the Service needs: queries and transactions
// (*pgxpool.Pool satisfies it).
type DB interface {
	postgres.Querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Service charges the customer of each new order and refunds the payment
// of each cancelled one. It is safe for concurrent use.
type Service struct {
	DB      DB
	Gateway Gateway
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock of the emitted events. Default time.Now.
	Now func() time.Time
}

// result is what the lease claim of an order.created event stores for
// later duplicates.
type result struct {
	PaymentID string `json:"payment_id,omitempty"`
	Status    string `json:"status"`
	Reference string `json:"reference,omitempty"`
	// Skipped names the status the order was already in when the event
	// arrived (nothing was charged).
	Skipped string `json:"skipped,omitempty"`
}

// Handle processes one event of the order.created topic in lease mode:
// order.created is charged (HandleCreated), order.cancelled refunded
// (HandleCancelled). Any other type is a permanent
// handler.ErrUnexpectedType.
func (s *Service) Handle(ctx context.Context, claim *handler.Claim, ev handler.Event[events.Payload]) ([]byte, error) {
	switch p := ev.Data.(type) {
	case domain.OrderCreated:
		return s.HandleCreated(ctx, claim, ev.Event.ID(), p)
	case domain.OrderCancelled:
		return s.HandleCancelled(ctx, claim, ev.Event.ID(), p)
	}
	return nil, retry.Permanent(fmt.Errorf("%w %q: the payment function accepts %s and %s",
		handler.ErrUnexpectedType, ev.Event.Type(), domain.TypeOrderCreated, domain.TypeOrderCancelled))
}

// HandleCreated processes the order.created event eventID: the claim's
// key is passed on to the gateway as the idempotency key, so a charge
// repeated after a crash, a timeout or a lost lease is not taken twice.
//
// When the order is no longer pending (a late duplicate whose idempotency
// record was already purged, or an order the API cancelled first), nothing
// is charged and the event is acknowledged. Otherwise the gateway is
// called; an approval or a decline is recorded in one transaction: the
// payment row, the order's move to paid or payment_failed, the
// payment.processed or payment.failed outbox row and the completion of the
// lease claim (Claim.Complete). The kernel publishes the outbox row after
// the commit. Gateway and database errors keep their retry class; a
// missing order and a refused charge are permanent.
func (s *Service) HandleCreated(ctx context.Context, claim *handler.Claim, eventID string, order domain.OrderCreated) ([]byte, error) {
	log := s.logger().With("order_id", order.OrderID)

	status, err := orders.Get(ctx, s.DB, order.OrderID)
	if errors.Is(err, orders.ErrNotFound) {
		// The order commits with the event announcing it: a missing order
		// will not appear later.
		return nil, retry.Permanent(fmt.Errorf("get order %s: %w", order.OrderID, err))
	}
	if err != nil {
		return nil, fmt.Errorf("get order %s: %w", order.OrderID, err)
	}
	if status != orders.Pending {
		log.InfoContext(ctx, "order no longer pending; nothing to charge", "status", string(status))
		return mustJSON(result{Status: "skipped", Skipped: string(status)}), nil
	}

	res := ChargeResult{Approved: true, Reference: "free"}
	if order.Total > 0 {
		res, err = s.Gateway.Charge(ctx, ChargeRequest{
			IdempotencyKey: claim.Key().ID,
			OrderID:        order.OrderID,
			CustomerID:     order.CustomerID,
			Amount:         order.Total,
			Currency:       order.Currency,
		})
		if err != nil {
			return nil, fmt.Errorf("charge order %s: %w", order.OrderID, err)
		}
	}
	return nil, s.record(ctx, claim, eventID, order, res)
}

// record writes the outcome and completes the claim in one transaction.
func (s *Service) record(ctx context.Context, claim *handler.Claim, eventID string, order domain.OrderCreated, res ChargeResult) error {
	key := claim.Key()
	now := s.now().UTC()
	paymentID := PaymentID(key)
	to, status := orders.PaymentFailed, "declined"
	var payload events.Payload = domain.PaymentFailed{
		OrderID: order.OrderID, Reason: ReasonDeclined, DeclineCode: res.DeclineCode,
		Amount: order.Total, Currency: order.Currency, FailedAt: now,
	}
	if res.Approved {
		to, status = orders.Paid, "approved"
		payload = domain.PaymentProcessed{
			OrderID: order.OrderID, PaymentID: paymentID, Amount: order.Total, Currency: order.Currency,
			GatewayReference: res.Reference, ProcessedAt: now,
		}
	}

	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // no-op after Commit

	adv, err := orders.Advance(ctx, tx, order.OrderID, to, eventID)
	if errors.Is(err, orders.ErrIllegalAdvance) {
		// The order reached the sibling outcome (paid vs payment_failed)
		// through another event while the gateway answered: the same
		// conflict as below, not a reason to lose the charge's record.
		adv, err = orders.Result{From: adv.From}, nil
	}
	if err != nil {
		return fmt.Errorf("advance order: %w", err)
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO payments (id, idempotency_key, order_id, customer_id, amount, currency, status,
                      gateway_reference, decline_code, event_id, order_moved)
VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''), NULLIF($9, ''), $10, $11)
ON CONFLICT (idempotency_key) DO NOTHING`,
		paymentID, key.ID, order.OrderID, order.CustomerID, order.Total, order.Currency, status,
		res.Reference, res.DeclineCode, eventID, adv.Moved); err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	var out []handler.Out
	switch {
	case adv.Moved:
		o, err := handler.Emit(ctx, Source, payload)
		if err != nil {
			return err
		}
		out = append(out, o)
	case adv.From == orders.Cancelled:
		// The API cancelled the order while the gateway was answering. Its
		// order.cancelled event follows this one on the same ordering key
		// and refunds the approved charge recorded here.
		s.logger().InfoContext(ctx, "order cancelled during the charge; payment recorded for its refund, not announced",
			"order_id", order.OrderID, "payment_status", status, "payment_id", paymentID)
	default:
		// Another event for this order got there first while the gateway
		// was answering: the charge is recorded for reconciliation, the
		// order keeps its status and no second payment event goes out.
		s.logger().WarnContext(ctx, "order left pending during the charge; payment recorded, not announced",
			"order_id", order.OrderID, "order_status", string(adv.From), "payment_status", status, "payment_id", paymentID)
	}

	stored := mustJSON(result{PaymentID: paymentID, Status: status, Reference: res.Reference})
	if err := claim.Complete(ctx, tx, stored, out...); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit payment: %w", err)
	}
	return nil
}

// paymentNamespace scopes PaymentID's name-based UUIDs.
var paymentNamespace = uuid.MustParse("6f1c1f0e-5b8e-4f53-9a43-5e0c1d7f2a10")

// PaymentID is the id of the payment made for an idempotency key: a
// name-based UUID, so every attempt at the same event names the same
// payment.
func PaymentID(key idempotency.Key) string {
	return uuid.NewSHA1(paymentNamespace, []byte(key.Consumer+"\x00"+key.ID)).String()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// EntryPoint is the name the function is registered under (function.yaml
// entry_point).
const EntryPoint = "Payment"

// handlerConfig: no in-process retry of the whole delivery (the gateway
// client retries its own calls; a delivery that still fails, or finds its
// event in progress elsewhere, answers 503 so Pub/Sub redelivers with
// backoff instead of holding a request slot).
var handlerConfig = handler.Config{Retry: retry.Policy{MaxAttempts: 1}}
