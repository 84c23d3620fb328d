package handler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/events"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/outbox"
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

// transactional runs fn in transactional mode: the claim, fn's writes and
// the outbox rows of the messages it returns commit in one PostgreSQL
// transaction (Config.TxStore). A duplicate is acknowledged without running
// fn. After the commit the rows are published (Config.Publish) within
// Config.AfterBudget, even past the request's deadline; a failure there is
// only logged, because the relay publishes whatever is left.
func transactional[T events.Payload](c *Config, fn TxFunc[T]) Func {
	return func(ctx context.Context, in *events.Incoming) error {
		ev, err := typed[T](in)
		if err != nil {
			return err
		}
		var ids []int64
		out, err := c.TxStore.Transactional(ctx, c.Key(c.Consumer, in), payloadHash(in), func(ctx context.Context, tx pgx.Tx) error {
			ids = nil
			var msgs []Out
			if err := protect(ctx, c.Logger, func() (err error) { msgs, err = fn(ctx, tx, ev); return err }); err != nil {
				return err
			}
			if len(msgs) == 0 {
				return nil
			}
			ids, err = outbox.WriteMany(ctx, tx, msgs)
			if err != nil {
				return fmt.Errorf("write outbox: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if out == idempotency.OutcomeDuplicate {
			setOutcome(ctx, "duplicate")
			return nil
		}
		c.publishAfterCommit(ctx, ids)
		return nil
	}
}

// publishAfterCommit publishes committed outbox rows within AfterBudget.
func (c *Config) publishAfterCommit(ctx context.Context, ids []int64) {
	if len(ids) == 0 || c.Publish == nil {
		return
	}
	actx, cancel := c.afterDeadline(ctx)
	defer cancel()
	if err := c.Publish(actx, ids...); err != nil {
		c.Logger.WarnContext(ctx, "publish after commit failed; the outbox relay will publish", "error", err.Error(), "outbox_ids", len(ids))
	}
}

// afterDeadline is the context of a step that must run even when the
// request's deadline has passed (recording a success, dead-lettering,
// publishing after commit): ctx's values, no cancellation, and a deadline of
// its own, AfterBudget from now.
func (c *Config) afterDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), c.AfterBudget)
}

// afterRetry retries a step after the function (recording its success)
// within the step's own deadline: the step is cheap and must not be lost to
// one failed round trip.
var afterRetry = retry.Policy{MaxAttempts: 5, Initial: 50 * time.Millisecond, Max: time.Second}

// Claim is the claim of one lease-mode delivery, given to a LeaseFunc.
type Claim struct {
	claim idempotency.Claim
	store idempotency.LeaseStore

	mu   sync.Mutex
	done bool
	ids  []int64
}

// Key is the delivery's idempotency key. Pass Key().ID to the outside
// system as its idempotency key, so an attempt repeated after a crash or a
// lost lease does not repeat the effect there.
func (l *Claim) Key() idempotency.Key { return l.claim.Key }

// Attempt counts the claims of the delivery's record: 1 for the first,
// more when an expired lease was taken over.
func (l *Claim) Attempt() int { return l.claim.Attempt }

// TxCompleter is a lease store that can complete a claim inside the
// caller's transaction (*idempotency.Store can).
type TxCompleter interface {
	CompleteTx(ctx context.Context, q postgres.Querier, c idempotency.Claim, result []byte) error
}

// ErrNoTxCompletion is returned by Claim.Complete when the lease store
// cannot complete a claim inside a transaction.
var ErrNoTxCompletion = errors.New("handler: the lease store cannot complete a claim inside a transaction")

// Complete records result as the claim's outcome inside tx, and writes out
// to the outbox in tx, so the outcome, the function's own writes and its
// messages commit together. The messages are published once the function
// returns nil. If tx rolls back, the function must return an error: the
// claim is then released for the redelivery.
func (l *Claim) Complete(ctx context.Context, tx pgx.Tx, result []byte, out ...Out) error {
	tc, ok := l.store.(TxCompleter)
	if !ok {
		return ErrNoTxCompletion
	}
	var ids []int64
	if len(out) > 0 {
		var err error
		if ids, err = outbox.WriteMany(ctx, tx, out); err != nil {
			return fmt.Errorf("write outbox: %w", err)
		}
	}
	if err := tc.CompleteTx(ctx, tx, l.claim, result); err != nil {
		return fmt.Errorf("complete claim: %w", err)
	}
	l.mu.Lock()
	l.done, l.ids = true, ids
	l.mu.Unlock()
	return nil
}

func (l *Claim) completed() (bool, []int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done, l.ids
}

// lease runs fn in lease mode: it claims the delivery's key with a lease of
// Config.Lease, runs fn while renewing the lease every third of it (so a
// live attempt keeps the key however long it runs, and a crashed one loses
// it within one lease), and completes the claim with fn's result when fn
// returns nil, or releases it when fn fails, so the redelivery claims at
// once. A completed key is acknowledged without running fn; a key whose
// lease another delivery holds is a transient error. A payload that does
// not match the recorded hash is a permanent error.
//
// Once fn has succeeded its effect has happened: recording that never
// depends on the request's deadline (it runs within AfterBudget, retried),
// and the claim of a succeeded function is never released. If recording
// fails all the same, the claim stays in progress until its lease expires,
// and a redelivery is answered "in progress" until then.
func lease[T events.Payload](c *Config, fn LeaseFunc[T]) Func {
	return func(ctx context.Context, in *events.Incoming) error {
		ev, err := typed[T](in)
		if err != nil {
			return err
		}
		claim, err := c.LeaseStore.Claim(ctx, c.Key(c.Consumer, in), payloadHash(in), c.Lease)
		if err != nil {
			return err
		}
		if claim.State == idempotency.ClaimDone {
			setOutcome(ctx, "duplicate")
			return nil
		}
		l := &Claim{claim: claim, store: c.LeaseStore}
		var result []byte
		err = c.whileRenewing(ctx, claim, func(ctx context.Context) error {
			return protect(ctx, c.Logger, func() (err error) { result, err = fn(ctx, l, ev); return err })
		})
		if err != nil {
			actx, cancel := c.afterDeadline(ctx)
			defer cancel()
			if rerr := c.LeaseStore.Release(actx, claim); rerr != nil && !errors.Is(rerr, idempotency.ErrLeaseLost) {
				err = errors.Join(err, fmt.Errorf("release claim: %w", rerr))
			}
			return err
		}
		done, ids := l.completed()
		if !done {
			actx, cancel := c.afterDeadline(ctx)
			defer cancel()
			err := retry.Do(actx, afterRetry, func(ctx context.Context) error { return c.LeaseStore.Complete(ctx, claim, result) })
			if err != nil {
				c.Logger.ErrorContext(ctx, "effect done but its completion was not recorded; the claim stays in progress until its lease expires",
					"error", err.Error(), "idempotency_key", claim.Key.String(), "lease_expires_at", claim.LeaseExpiresAt)
				return retry.Transient(fmt.Errorf("complete claim: %w", err))
			}
		}
		c.publishAfterCommit(ctx, ids)
		return nil
	}
}

// ErrLeaseLost is the cause of a lease function's context when its claim
// was taken over (its lease expired without renewal, for example while the
// process was stalled): the function should stop, since a redelivery owns
// the event now.
var ErrLeaseLost = errors.New("handler: the claim's lease was lost to another delivery")

// whileRenewing runs fn with a context that is cancelled (cause
// ErrLeaseLost) if the claim's lease cannot be kept, extending the lease
// every third of Config.Lease until fn returns.
func (c *Config) whileRenewing(ctx context.Context, claim idempotency.Claim, fn func(context.Context) error) error {
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		every := c.Lease / 3
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), every)
			err := c.LeaseStore.Extend(rctx, claim, c.Lease)
			rcancel()
			switch {
			case errors.Is(err, idempotency.ErrLeaseLost):
				c.Logger.WarnContext(ctx, "lease lost while the function ran; stopping it", "idempotency_key", claim.Key.String())
				cancel(ErrLeaseLost)
				return
			case err != nil:
				// Try again at the next tick: the lease is still ours
				// until it expires.
				c.Logger.WarnContext(ctx, "lease renewal failed", "error", err.Error(), "idempotency_key", claim.Key.String())
			}
		}
	}()
	err := fn(fctx)
	close(done)
	<-stopped
	if err != nil && context.Cause(fctx) == ErrLeaseLost {
		err = retry.Transient(fmt.Errorf("%w: %w", ErrLeaseLost, err))
	}
	return err
}
