package payment

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/orders"
	"example.com/platform/shared/outbox"
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

// Gateway charges customers. Charge returns a result for an approval or a
// decline and an error only when the outcome is unknown or the request
// was refused: transient errors (timeouts, 5xx, 429, an open circuit
// breaker) mean "try again later with the same key", permanent ones (other
// 4xx, a malformed answer) that repeating cannot help. Implementations
// must be safe for concurrent use.
type Gateway interface {
	Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error)
}

// DB is the database the Service needs: queries and transactions
// (*pgxpool.Pool satisfies it).
type DB interface {
	postgres.Querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Service charges the customer of each new order. It is safe for
// concurrent use.
type Service struct {
	DB      DB
	Gateway Gateway
	// Publish publishes outbox rows after their transaction committed
	// (outbox.Relay.PublishAfterCommit). A failure is only logged: the
	// relay publishes what is left. Nil leaves everything to the relay.
	Publish func(ctx context.Context, ids ...int64) error
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock of the emitted events. Default time.Now.
	Now func() time.Time
}

// result is what the lease claim stores for later duplicates.
type result struct {
	PaymentID string `json:"payment_id,omitempty"`
	Status    string `json:"status"`
	Reference string `json:"reference,omitempty"`
	// Skipped names the status the order was already in when the event
	// arrived (nothing was charged).
	Skipped string `json:"skipped,omitempty"`
}

// Handle processes one order.created event. It must run inside the Lease
// middleware (handler.Lease), whose claim key is passed on to the gateway
// as the idempotency key, so a charge repeated after a crash, a timeout or
// a lost lease is not taken twice.
//
// When the order is no longer pending (a late duplicate whose idempotency
// record was already purged), nothing is charged and the event is
// acknowledged. Otherwise the gateway is called; an approval or a decline
// is recorded in one transaction: the payment row, the order's move to paid
// or payment_failed, the payment.processed or payment.failed outbox row and
// the completion of the lease claim. The outbox row is published after the
// commit. Gateway and database errors keep their retry class; a missing
// order and a refused charge are permanent.
func (s *Service) Handle(ctx context.Context, in *events.Incoming) error {
	order, ok := in.Payload.(events.OrderCreated)
	if !ok {
		return retry.Permanentf("payment: unexpected event type %q", in.Event.Type())
	}
	claim, ok := handler.LeaseClaim(ctx)
	if !ok {
		return retry.Permanentf("payment: not running under the lease middleware")
	}
	log := s.logger().With("order_id", order.OrderID)

	status, err := orders.Get(ctx, s.DB, order.OrderID)
	if errors.Is(err, orders.ErrNotFound) {
		// The order commits with the event announcing it: a missing order
		// will not appear later.
		return retry.Permanent(fmt.Errorf("get order %s: %w", order.OrderID, err))
	}
	if err != nil {
		return fmt.Errorf("get order %s: %w", order.OrderID, err)
	}
	if status != orders.Pending {
		log.InfoContext(ctx, "order no longer pending; nothing to charge", "status", string(status))
		handler.LeaseResult(ctx, mustJSON(result{Status: "skipped", Skipped: string(status)}))
		return nil
	}

	res := ChargeResult{Approved: true, Reference: "free"}
	if order.Total > 0 {
		res, err = s.Gateway.Charge(ctx, ChargeRequest{
			IdempotencyKey: claim.Key.ID,
			OrderID:        order.OrderID,
			CustomerID:     order.CustomerID,
			Amount:         order.Total,
			Currency:       order.Currency,
		})
		if err != nil {
			return fmt.Errorf("charge order %s: %w", order.OrderID, err)
		}
	}

	ids, err := s.record(ctx, in, order, claim.Key, res)
	if err != nil {
		return err
	}
	if len(ids) > 0 && s.Publish != nil {
		if perr := s.Publish(context.WithoutCancel(ctx), ids...); perr != nil {
			log.WarnContext(ctx, "publish after commit failed; the outbox relay will publish", "error", perr.Error())
		}
	}
	return nil
}

// record writes the outcome in one transaction and returns the outbox ids.
func (s *Service) record(ctx context.Context, in *events.Incoming, order events.OrderCreated, key idempotency.Key, res ChargeResult) ([]int64, error) {
	now := s.now().UTC()
	paymentID := PaymentID(key)
	to, status := orders.PaymentFailed, "declined"
	var payload events.Payload = events.PaymentFailed{
		OrderID: order.OrderID, Reason: ReasonDeclined, DeclineCode: res.DeclineCode,
		Amount: order.Total, Currency: order.Currency, FailedAt: now,
	}
	if res.Approved {
		to, status = orders.Paid, "approved"
		payload = events.PaymentProcessed{
			OrderID: order.OrderID, PaymentID: paymentID, Amount: order.Total, Currency: order.Currency,
			GatewayReference: res.Reference, ProcessedAt: now,
		}
	}

	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // no-op after Commit

	adv, err := orders.Advance(ctx, tx, order.OrderID, to, in.Event.ID())
	if errors.Is(err, orders.ErrIllegalAdvance) {
		// The order reached the sibling outcome (paid vs payment_failed)
		// through another event while the gateway answered: the same
		// conflict as below, not a reason to lose the charge's record.
		adv, err = orders.Result{From: adv.From}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("advance order: %w", err)
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO payments (id, idempotency_key, order_id, customer_id, amount, currency, status,
                      gateway_reference, decline_code, event_id, order_moved)
VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''), NULLIF($9, ''), $10, $11)
ON CONFLICT (idempotency_key) DO NOTHING`,
		paymentID, key.ID, order.OrderID, order.CustomerID, order.Total, order.Currency, status,
		res.Reference, res.DeclineCode, in.Event.ID(), adv.Moved); err != nil {
		return nil, fmt.Errorf("insert payment: %w", err)
	}
	var ids []int64
	if adv.Moved {
		topic, msg, err := events.NewMessage(ctx, Source, payload)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", payload.EventType(), err)
		}
		id, err := outbox.Write(ctx, tx, topic, msg)
		if err != nil {
			return nil, fmt.Errorf("write outbox: %w", err)
		}
		ids = append(ids, id)
	} else {
		// Another event for this order got there first while the gateway
		// was answering: the charge is recorded for reconciliation, the
		// order keeps its status and no second payment event goes out.
		s.logger().WarnContext(ctx, "order left pending during the charge; payment recorded, not announced",
			"order_id", order.OrderID, "order_status", string(adv.From), "payment_status", status, "payment_id", paymentID)
	}

	stored := mustJSON(result{PaymentID: paymentID, Status: status, Reference: res.Reference})
	switch err := handler.CompleteLeaseTx(ctx, tx, stored); {
	case errors.Is(err, handler.ErrNoLease):
		// A lease store that cannot join the transaction: the middleware
		// completes the claim after the commit.
		handler.LeaseResult(ctx, stored)
	case err != nil:
		return nil, fmt.Errorf("complete claim: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit payment: %w", err)
	}
	return ids, nil
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

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or updates the payments table. It is safe to call from
// every instance at start (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return postgres.Migrate(ctx, pool, "payment", sub)
}
