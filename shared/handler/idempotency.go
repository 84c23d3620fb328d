package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/events"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/postgres"
	"example.com/platform/shared/retry"
)

// KeyFunc derives the idempotency key of a delivery. The default,
// EventKey, uses the CloudEvent source and id.
type KeyFunc func(consumer string, in *events.Incoming) idempotency.Key

// EventKey is the default key: (consumer, CloudEvent source + id).
func EventKey(consumer string, in *events.Incoming) idempotency.Key {
	return idempotency.KeyFor(consumer, in.Event.Source(), in.Event.ID())
}

// payloadHash hashes the event data, so a replay of the same id with other
// data is caught as tampering.
func payloadHash(in *events.Incoming) []byte { return idempotency.HashPayload(in.Event.Data()) }

// Transactional runs the rest of the chain in transactional mode: the claim,
// the domain function's writes (through Tx(ctx)) and its outbox rows commit
// in one PostgreSQL transaction, so effects happen exactly once. A
// duplicate is acknowledged without running the function. After the commit,
// the outbox rows the function registered with AfterCommit are handed to
// publish (typically outbox.Relay.PublishAfterCommit); a failure there is
// only logged, because the relay publishes whatever is left.
func Transactional(consumer string, store idempotency.TxStore, key KeyFunc, publish func(ctx context.Context, ids ...int64) error, logger *slog.Logger) Middleware {
	if key == nil {
		key = EventKey
	}
	return func(next Func) Func {
		return func(ctx context.Context, in *events.Incoming) error {
			scope := &txScope{}
			out, err := store.Transactional(ctx, key(consumer, in), payloadHash(in), func(ctx context.Context, tx pgx.Tx) error {
				scope.tx = tx
				return next(context.WithValue(ctx, txKey{}, scope), in)
			})
			if err != nil {
				return err
			}
			if out == idempotency.OutcomeDuplicate {
				setOutcome(ctx, "duplicate")
				return nil
			}
			if ids := scope.outbox; len(ids) > 0 && publish != nil {
				if perr := publish(context.WithoutCancel(ctx), ids...); perr != nil && logger != nil {
					logger.WarnContext(ctx, "publish after commit failed; the outbox relay will publish", "error", perr.Error())
				}
			}
			return nil
		}
	}
}

type txKey struct{}

type txScope struct {
	tx     pgx.Tx
	outbox []int64
}

// Tx returns the transaction of the Transactional middleware, or nil when
// the function does not run inside one.
func Tx(ctx context.Context) pgx.Tx {
	if s, ok := ctx.Value(txKey{}).(*txScope); ok {
		return s.tx
	}
	return nil
}

// AfterCommit registers outbox row ids written in Tx(ctx) for publishing
// once the transaction commits.
func AfterCommit(ctx context.Context, ids ...int64) {
	if s, ok := ctx.Value(txKey{}).(*txScope); ok {
		s.outbox = append(s.outbox, ids...)
	}
}

// Lease runs the rest of the chain in lease mode, for effects outside
// PostgreSQL: it claims the key with a lease of d, runs the function, and
// completes the claim (storing the function's result, see LeaseResult) when
// it returns nil, or releases it when it fails, so the redelivery claims at
// once. A completed key is acknowledged without running the function; a
// key whose lease another delivery holds is a transient error. A payload
// that does not match the recorded hash is a permanent error.
//
// The function may complete the claim itself inside its own transaction
// with CompleteLeaseTx, so the result and its business writes commit
// together.
func Lease(consumer string, store idempotency.LeaseStore, d time.Duration, key KeyFunc) Middleware {
	if key == nil {
		key = EventKey
	}
	return func(next Func) Func {
		return func(ctx context.Context, in *events.Incoming) (err error) {
			c, err := store.Claim(ctx, key(consumer, in), payloadHash(in), d)
			if err != nil {
				return err
			}
			if c.State == idempotency.ClaimDone {
				setOutcome(ctx, "duplicate")
				return nil
			}
			scope := &leaseScope{store: store, claim: c}
			defer func() {
				if err != nil || !scope.isDone() {
					if rerr := store.Release(context.WithoutCancel(ctx), c); rerr != nil && !errors.Is(rerr, idempotency.ErrLeaseLost) {
						err = errors.Join(err, fmt.Errorf("release claim: %w", rerr))
					}
				}
			}()
			if err = next(context.WithValue(ctx, leaseKey{}, scope), in); err != nil {
				return err
			}
			if scope.isDone() {
				return nil
			}
			if err = store.Complete(ctx, c, scope.result); err != nil {
				return retry.Transient(fmt.Errorf("complete claim: %w", err))
			}
			scope.markDone()
			return nil
		}
	}
}

type leaseKey struct{}

type leaseScope struct {
	store  idempotency.LeaseStore
	claim  idempotency.Claim
	mu     sync.Mutex
	result []byte
	done   bool
}

func (s *leaseScope) isDone() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.done }
func (s *leaseScope) markDone()    { s.mu.Lock(); s.done = true; s.mu.Unlock() }

// LeaseClaim returns the claim of the Lease middleware (its Key and Token
// identify the attempt; pass Key as the Idempotency-Key of outbound
// calls), and false outside one.
func LeaseClaim(ctx context.Context) (idempotency.Claim, bool) {
	if s, ok := ctx.Value(leaseKey{}).(*leaseScope); ok {
		return s.claim, true
	}
	return idempotency.Claim{}, false
}

// LeaseResult sets the result stored with the claim when the function
// returns nil; later duplicates find it in the claim.
func LeaseResult(ctx context.Context, result []byte) {
	if s, ok := ctx.Value(leaseKey{}).(*leaseScope); ok {
		s.mu.Lock()
		s.result = append([]byte(nil), result...)
		s.mu.Unlock()
	}
}

// ErrNoLease is returned by CompleteLeaseTx outside the Lease middleware or
// with a store that cannot complete inside a transaction.
var ErrNoLease = errors.New("handler: no lease claim that can complete in a transaction")

// CompleteLeaseTx completes the claim inside q (the caller's transaction),
// so the stored result commits with the business writes. If the
// transaction then rolls back, the claim stays in progress until its lease
// expires or the middleware releases it.
func CompleteLeaseTx(ctx context.Context, q postgres.Querier, result []byte) error {
	s, ok := ctx.Value(leaseKey{}).(*leaseScope)
	if !ok {
		return ErrNoLease
	}
	tc, ok := s.store.(interface {
		CompleteTx(ctx context.Context, q postgres.Querier, c idempotency.Claim, result []byte) error
	})
	if !ok {
		return ErrNoLease
	}
	if err := tc.CompleteTx(ctx, q, s.claim, result); err != nil {
		return err
	}
	s.markDone()
	return nil
}
