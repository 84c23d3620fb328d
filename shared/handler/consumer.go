package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"

	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/events"
	"example.com/platform/shared/manifest"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/retry"
)

// Event is one decoded delivery whose data is a T. Incoming carries the
// CloudEvent, the original Pub/Sub message and its delivery metadata.
type Event[T events.Payload] struct {
	*events.Incoming
	// Data is the typed, validated payload.
	Data T
}

// Out is one message a domain function produces. The idempotency layer
// writes it to the outbox in the function's transaction and publishes it
// right after the commit; the outbox relay publishes whatever that misses.
type Out = outbox.Entry

// Emit builds the Out of payload p: a CloudEvent from source on the topic
// p's type is registered for, carrying ctx's trace (events.NewMessage).
// Options set the event id (events.WithID) for ids derived from the input,
// so a retried attempt emits the same event.
func Emit(ctx context.Context, source string, p events.Payload, opts ...events.Option) (Out, error) {
	topic, m, err := events.NewMessage(ctx, source, p, opts...)
	if err != nil {
		return Out{}, fmt.Errorf("emit %s: %w", p.EventType(), err)
	}
	return Out{Topic: topic, Message: m}, nil
}

// TxFunc is a transactional domain function: it makes every write inside
// tx and returns the messages to publish. The claim of the delivery, the
// writes and the outbox rows commit together, so effects happen exactly
// once; a duplicate never reaches the function.
type TxFunc[T events.Payload] func(ctx context.Context, tx pgx.Tx, ev Event[T]) ([]Out, error)

// LeaseFunc is a lease-mode domain function, for effects outside
// PostgreSQL: it runs while the delivery's claim is leased to it, passes
// the claim's key on to the outside system (an Idempotency-Key header) and
// returns the result to store with the claim, which later duplicates are
// answered with. To commit the result with its own business writes (and
// any messages to publish), it calls Claim.Complete inside its transaction
// instead; the returned result is then ignored.
type LeaseFunc[T events.Payload] func(ctx context.Context, c *Claim, ev Event[T]) ([]byte, error)

// StatelessFunc is a domain function with no idempotency layer: the sink
// it writes to deduplicates by itself (BigQuery insertIds).
type StatelessFunc[T events.Payload] func(ctx context.Context, ev Event[T]) error

// RawFunc receives every push, including those that could not be decoded
// as an event (decodeErr says why; in.Message holds the body and
// attributes): for the dead-letter archive, which must keep everything.
type RawFunc func(ctx context.Context, in *events.Incoming, decodeErr error) error

// Consumer is a domain function together with its idempotency mode, made
// by Transactional, Lease, Stateless or Raw: the mode follows from the
// function's type.
type Consumer struct {
	mode string
	raw  RawFunc
	bind func(c *Config) Func
}

// Mode is the consumer's idempotency mode, one of manifest.Idempotency*,
// as the function's manifest must declare it.
func (c Consumer) Mode() string { return c.mode }

// IsRaw reports whether the consumer was made by Raw.
func (c Consumer) IsRaw() bool { return c.raw != nil }

// Transactional is the consumer of fn in transactional mode (Config.TxStore
// is required).
func Transactional[T events.Payload](fn TxFunc[T]) Consumer {
	return Consumer{mode: manifest.IdempotencyTransactional, bind: func(c *Config) Func { return transactional(c, fn) }}
}

// Lease is the consumer of fn in lease mode (Config.LeaseStore is
// required).
func Lease[T events.Payload](fn LeaseFunc[T]) Consumer {
	return Consumer{mode: manifest.IdempotencyLease, bind: func(c *Config) Func { return lease(c, fn) }}
}

// Stateless is the consumer of fn with no idempotency layer.
func Stateless[T events.Payload](fn StatelessFunc[T]) Consumer {
	return Consumer{mode: manifest.IdempotencyNone, bind: func(c *Config) Func {
		return func(ctx context.Context, in *events.Incoming) error {
			ev, err := typed[T](in)
			if err != nil {
				return err
			}
			return protect(ctx, c.Logger, func() error { return fn(ctx, ev) })
		}
	}}
}

// Raw is the consumer of fn for every push, decodable or not, with no
// idempotency layer and no dead-lettering: a failure is answered non-2xx so
// Pub/Sub redelivers it (see Handler).
func Raw(fn RawFunc) Consumer {
	return Consumer{mode: manifest.IdempotencyNone, raw: fn, bind: func(c *Config) Func {
		return func(ctx context.Context, in *events.Incoming) error {
			return protect(ctx, c.Logger, func() error { return fn(ctx, in, decodeErrorOf(ctx)) })
		}
	}}
}

// ErrUnexpectedType is wrapped by the permanent error of a delivery whose
// payload is not the type the consumer accepts (a subscription wired to the
// wrong topic, or a filter that lets too much through).
var ErrUnexpectedType = errors.New("unexpected event type")

// typed asserts the payload of in is a T.
func typed[T events.Payload](in *events.Incoming) (Event[T], error) {
	p, ok := in.Payload.(T)
	if !ok {
		return Event[T]{}, retry.Permanent(fmt.Errorf("%w %q: this consumer accepts %s", ErrUnexpectedType, in.Event.Type(), typeName[T]()))
	}
	return Event[T]{Incoming: in, Data: p}, nil
}

func typeName[T any]() string {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Interface {
		return "any registered event type"
	}
	return t.String()
}

// protect runs fn and turns a panic into a transient error, logging the
// stack, so the layers around it (a claim, a transaction) clean up and the
// process keeps serving.
func protect(ctx context.Context, logger *slog.Logger, fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			logger.ErrorContext(ctx, "handler panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = retry.Transient(fmt.Errorf("panic: %v", v))
		}
	}()
	return fn()
}
