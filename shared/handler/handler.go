// Package handler turns a typed domain function into a Pub/Sub push
// endpoint that is safe under at-least-once delivery.
//
// The domain function's type says what it consumes and produces (see
// Consumer): a TxFunc gets the decoded event and the transaction and
// returns the messages to publish; a LeaseFunc gets its claim and returns
// the result to store; a StatelessFunc gets the event; a RawFunc gets every
// push. New composes the standard chain around it and serves it over HTTP.
// The order is fixed here, once, outermost first:
//
//	Recover      a panic anywhere below becomes a transient error, stack logged
//	Observe      trace and labels into ctx, one log line per delivery
//	Timeout      the request's time budget (Config.Timeout)
//	parking      on a subscription consumed with ordering (Config.Ordering):
//	             an event of a parked key is stored, not applied; a dead
//	             letter parks its key; a replay releases it (parking.go)
//	DeadLetter   permanent error -> publish to the consumer's DLQ, then ack
//	             (not for Raw consumers)
//	lastAttempt  ordered subscription, last delivery attempt: a transient
//	             error becomes permanent, so it is dead-lettered here
//	Retry        transient error -> in-process retry with backoff and jitter
//	idempotency  transactional or lease claim, from the consumer's mode
//	function     the domain function; a panic in it becomes a transient
//	             error here too, so the claim and the transaction are undone
//
// Steps that run after the domain function (recording a lease's success,
// publishing after commit, dead-lettering) must happen even when the
// request's deadline has passed, and must answer before the subscription's
// ack deadline: each runs with a deadline of its own, Config.AfterBudget.
//
// Responses follow the push contract: 2xx acknowledges (done, duplicate, or
// dead-lettered), anything else makes Pub/Sub redeliver with the
// subscription's backoff and, after its maximum delivery attempts, forward
// the message to the dead-letter topic itself. A transient error answers
// 503; a permanent error that could not be dead-lettered (no DLQ configured,
// or the DLQ publish failed) answers 500 so nothing is lost.
//
// A push that cannot be decoded (malformed JSON, unknown type, missing
// attributes, oversized body) is dead-lettered at once with its original body
// and attributes, through the same Observe and DeadLetter layers.
package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/events"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/manifest"
	"example.com/platform/shared/observability"
	"example.com/platform/shared/parking"
	"example.com/platform/shared/retry"
)

// Func handles one decoded event: the type every middleware wraps.
// Returning nil acknowledges the delivery; an error is classified with
// retry.Classify. Domain functions are written as a TxFunc, LeaseFunc,
// StatelessFunc or RawFunc and given to New as a Consumer.
type Func func(ctx context.Context, in *events.Incoming) error

// Middleware wraps a Func.
type Middleware func(Func) Func

// Chain wraps h in mws; mws[0] is the outermost.
func Chain(h Func, mws ...Middleware) Func {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Defaults of Config.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultAfterBudget = manifest.AfterBudgetSeconds * time.Second
	DefaultLease       = 2 * time.Minute
	MinLease           = time.Second
)

// Configuration errors returned by Config.Validate and New.
var (
	ErrNoConsumer   = errors.New("handler: Config.Consumer is required")
	ErrNoTxStore    = errors.New("handler: a transactional consumer needs Config.TxStore (the database)")
	ErrNoLeaseStore = errors.New("handler: a lease consumer needs Config.LeaseStore (the database)")
	ErrNoFunction   = errors.New("handler: the consumer has no function (make it with Transactional, Lease, Stateless or Raw)")
	ErrNoParking    = errors.New("handler: Config.Ordering needs Config.Parking (parked keys live in PostgreSQL)")
)

// Config configures New.
type Config struct {
	// Consumer is the function's name: the idempotency namespace and the
	// dlq-consumer attribute. Required.
	Consumer string
	// Logger receives one line per delivery. Default slog.Default().
	Logger *slog.Logger
	// DeadLetter publishes permanently failed messages. When nil,
	// permanent failures answer 500 and Pub/Sub's own dead-letter policy
	// takes over after the subscription's maximum delivery attempts.
	DeadLetter *deadletter.Publisher
	// Retry is the in-process retry policy for transient errors (see
	// retry.Policy for its defaults). Its budget is further bounded by
	// Timeout.
	Retry retry.Policy
	// Timeout bounds the handling of one delivery. app.Register sets it
	// from the manifest's resources.handler_timeout, which the manifest
	// keeps below the ack deadline with AfterBudget. Default 30s.
	Timeout time.Duration
	// MaxBody is the largest body accepted. Default events.DefaultMaxBody.
	MaxBody int64
	// AfterBudget bounds each step that runs after the domain function,
	// whatever the request's deadline: dead-lettering, publishing after
	// commit, recording a lease's success. Timeout + AfterBudget must stay
	// below the subscription's ack deadline. Default 5s.
	AfterBudget time.Duration

	// TxStore is the idempotency store of a transactional consumer.
	TxStore idempotency.TxStore
	// LeaseStore is the idempotency store of a lease consumer. A store
	// that also implements TxCompleter lets the function complete its claim
	// in its own transaction (Claim.Complete).
	LeaseStore idempotency.LeaseStore
	// Lease is the lease of a lease consumer's claim, renewed every third
	// of it while the function runs: a live attempt keeps its claim however
	// long it runs, and the claim of a crashed one is taken over by a
	// redelivery within one lease. At least MinLease; default DefaultLease.
	Lease time.Duration
	// Key derives the idempotency key of a delivery. Default EventKey.
	Key KeyFunc
	// Publish publishes outbox rows right after their transaction
	// committed (outbox.Relay.PublishAfterCommit). Nil leaves them to the
	// relay.
	Publish func(ctx context.Context, ids ...int64) error

	// Ordering lists the subscriptions the consumer consumes with
	// ordering (manifest `ordering: true`), by subscription id
	// (manifest.SubscriptionID). For their deliveries a dead letter parks
	// the ordering key (see Parking and shared/parking), and a transient
	// failure on the subscription's last delivery attempt is dead-lettered
	// by the handler, so Pub/Sub never skips ahead of it by itself.
	Ordering map[string]OrderedSubscription
	// Parking keeps the parked keys; required with Ordering.
	Parking *parking.Store
}

// OrderedSubscription is a subscription consumed with ordering.
type OrderedSubscription struct {
	// Topic the subscription consumes: where a replay of its dead letters
	// goes.
	Topic string
	// MaxDeliveryAttempts is the subscription's dead-letter policy: the
	// handler dead-letters a delivery that fails on this attempt. Zero
	// leaves the last attempt to Pub/Sub.
	MaxDeliveryAttempts int
}

// Validate checks cfg.
func (c Config) Validate() error {
	if c.Consumer == "" {
		return ErrNoConsumer
	}
	if c.Timeout < 0 {
		return fmt.Errorf("handler: negative Timeout %s", c.Timeout)
	}
	if c.AfterBudget < 0 || c.Lease < 0 {
		return fmt.Errorf("handler: negative AfterBudget %s or Lease %s", c.AfterBudget, c.Lease)
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("handler: retry policy: %w", err)
	}
	if len(c.Ordering) > 0 && c.Parking == nil {
		return ErrNoParking
	}
	return nil
}

// validateFor checks what consumer needs of c.
func (c Config) validateFor(consumer Consumer) error {
	switch {
	case consumer.bind == nil:
		return ErrNoFunction
	case consumer.mode == manifest.IdempotencyTransactional && c.TxStore == nil:
		return ErrNoTxStore
	case consumer.mode == manifest.IdempotencyLease && c.LeaseStore == nil:
		return ErrNoLeaseStore
	case consumer.mode == manifest.IdempotencyLease && c.Lease < MinLease:
		return fmt.Errorf("handler: Lease %s is shorter than %s: renewing it every third would hammer the store", c.Lease, MinLease)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBody <= 0 {
		c.MaxBody = events.DefaultMaxBody
	}
	if c.AfterBudget == 0 {
		c.AfterBudget = DefaultAfterBudget
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.Key == nil {
		c.Key = EventKey
	}
}

// Handler is the http.Handler New returns. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	raw    bool
	handle Func // full chain for decoded events (every push for Raw)
	reject Func // chain for pushes that could not be decoded
}

// New returns an http.Handler that decodes each push and runs consumer
// inside the standard chain (see the package doc), with the idempotency
// layer of the consumer's mode.
func New(cfg Config, consumer Consumer) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.validateFor(consumer); err != nil {
		return nil, err
	}
	c := &cfg
	outer := []Middleware{
		Recover(c.Logger),
		Observe(c.Consumer, c.Logger),
		Timeout(c.Timeout),
	}
	if consumer.raw != nil {
		return &Handler{cfg: cfg, raw: true, handle: Chain(consumer.bind(c), append(outer, Retry(c.Retry))...)}, nil
	}
	deadLetter := DeadLetter(c.Consumer, c.DeadLetter, c.Logger, c.AfterBudget)
	p := &parker{
		cfg:    c,
		apply:  Chain(consumer.bind(c), deadLetter, lastAttempt(c.Ordering), Retry(c.Retry)),
		reject: Chain(decodeError, deadLetter),
	}
	// Decoded and undecodable pushes take the same way: the parker sends
	// each to apply or reject, after parking it if its key is parked.
	h := Chain(p.serve, outer...)
	return &Handler{cfg: cfg, handle: h, reject: h}, nil
}

// ServeHTTP implements the push contract.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "push deliveries are POST requests", http.StatusMethodNotAllowed)
		return
	}
	in, decodeErr := events.DecodeRequest(r, h.cfg.MaxBody)
	ctx := in.Context(r.Context())
	var err error
	switch {
	case decodeErr == nil:
		err = h.handle(ctx, in)
	case h.raw && retry.IsTransient(decodeErr):
		// The body could not be read whole: take it on redelivery.
		h.cfg.Logger.WarnContext(ctx, "push body unreadable; Pub/Sub will redeliver", "error", decodeErr.Error())
		err = decodeErr
	case h.raw:
		err = h.handle(withDecodeError(ctx, decodeErr), in)
	default:
		err = h.reject(withDecodeError(ctx, decodeErr), in)
	}
	writeStatus(w, err)
}

func writeStatus(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case retry.IsPermanent(err):
		http.Error(w, "permanent failure, not dead-lettered: "+err.Error(), http.StatusInternalServerError)
	default:
		http.Error(w, "transient failure, redeliver: "+err.Error(), http.StatusServiceUnavailable)
	}
}

type decodeErrKey struct{}

// withDecodeError makes the reject chain's innermost Func fail with err.
func withDecodeError(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, decodeErrKey{}, err)
}

// decodeErrorOf is the error DecodeRequest returned for the push of ctx, or
// nil.
func decodeErrorOf(ctx context.Context) error {
	err, _ := ctx.Value(decodeErrKey{}).(error)
	return err
}

// decodeError is the innermost Func of the reject chain: it fails with the
// error DecodeRequest returned.
func decodeError(ctx context.Context, _ *events.Incoming) error {
	if err := decodeErrorOf(ctx); err != nil {
		return err
	}
	return retry.Permanentf("decode event: undecodable push")
}

// Recover turns a panic below it into a transient error and logs the
// stack. The process never crashes because of one delivery.
func Recover(logger *slog.Logger) Middleware {
	return func(next Func) Func {
		return func(ctx context.Context, in *events.Incoming) (err error) {
			defer func() {
				if v := recover(); v != nil {
					stack := string(debug.Stack())
					logger.ErrorContext(ctx, "handler panicked", "panic", fmt.Sprint(v), "stack", stack)
					err = retry.Transient(fmt.Errorf("panic: %v", v))
				}
			}()
			return next(ctx, in)
		}
	}
}

// Observe adds the consumer label to ctx and logs one line per delivery:
// INFO when acknowledged, WARNING when it will be redelivered, ERROR when a
// permanent failure could not be dead-lettered.
func Observe(consumer string, logger *slog.Logger) Middleware {
	return func(next Func) Func {
		return func(ctx context.Context, in *events.Incoming) error {
			ctx = observability.WithLabel(ctx, observability.LabelFunction, consumer)
			start := time.Now()
			ctx, outcome := withOutcome(ctx)
			err := next(ctx, in)
			attrs := []any{"duration_ms", time.Since(start).Milliseconds()}
			switch {
			case err == nil:
				logger.InfoContext(ctx, "event "+outcome.get(), attrs...)
			case retry.IsPermanent(err):
				logger.ErrorContext(ctx, "permanent failure not dead-lettered; Pub/Sub will redeliver", append(append(attrs, "error", err.Error()), retry.LogAttrs(err)...)...)
			default:
				logger.WarnContext(ctx, "transient failure; Pub/Sub will redeliver", append(append(attrs, "error", err.Error()), retry.LogAttrs(err)...)...)
			}
			return err
		}
	}
}

// Timeout bounds the handling of one delivery.
func Timeout(d time.Duration) Middleware {
	return func(next Func) Func {
		return func(ctx context.Context, in *events.Incoming) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, in)
		}
	}
}

// DeadLetter publishes a delivery whose error is permanent to the
// consumer's dead-letter topic, unchanged but for reason attributes, and
// acknowledges it. The publish runs within budget, even when the request's
// deadline has passed. When the publish fails, or pub is nil, the error is
// returned so the delivery is not acknowledged and nothing is lost.
func DeadLetter(consumer string, pub *deadletter.Publisher, logger *slog.Logger, budget time.Duration) Middleware {
	if budget <= 0 {
		budget = DefaultAfterBudget
	}
	return func(next Func) Func {
		return func(ctx context.Context, in *events.Incoming) error {
			err := next(ctx, in)
			if err == nil || !retry.IsPermanent(err) || pub == nil {
				return err
			}
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
			defer cancel()
			id, perr := pub.Publish(dctx, in.Message, deadletter.Reason{
				Err:          err,
				Consumer:     consumer,
				SourceTopic:  sourceTopic(in),
				Subscription: in.Delivery.Subscription,
				MessageID:    in.Delivery.MessageID,
				Attempt:      in.Delivery.Attempt,
				PublishTime:  in.Delivery.PublishTime,
			})
			if perr != nil {
				logger.ErrorContext(ctx, "dead-lettering failed", "error", err.Error(), "publish_error", perr.Error())
				return fmt.Errorf("%w (dead-letter publish failed: %v)", err, perr)
			}
			logger.WarnContext(ctx, "event dead-lettered", "error", err.Error(), "dead_letter_topic", pub.Topic, "dead_letter_message_id", id)
			if o, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
				o.v, o.deadLetter = "dead-lettered", &deadLettered{id: id, reason: err.Error()}
			}
			return nil
		}
	}
}

// sourceTopic names the topic the event was published to, from the event
// type's registry entry.
func sourceTopic(in *events.Incoming) string {
	typ := events.LookupAttribute(in.Message.Attributes, events.AttrType)
	if in.Event.Context != nil {
		typ = in.Event.Type()
	}
	if ti, ok := events.Lookup(typ); ok {
		return ti.Topic
	}
	return ""
}

// Retry retries transient errors in process with p (exponential backoff,
// full jitter), never past ctx's deadline. Permanent errors return at once.
func Retry(p retry.Policy) Middleware {
	return func(next Func) Func {
		return func(ctx context.Context, in *events.Incoming) error {
			return retry.Do(ctx, p, func(ctx context.Context) error { return next(ctx, in) })
		}
	}
}

// outcome records what happened to a delivery for the log line, and the
// dead letter it became, if it did.
type outcome struct {
	v          string
	deadLetter *deadLettered
}

// deadLettered is a dead letter a delivery became: its message id on the
// dead-letter topic and the reason.
type deadLettered struct{ id, reason string }

type outcomeKey struct{}

func withOutcome(ctx context.Context) (context.Context, *outcome) {
	o := &outcome{v: "processed"}
	return context.WithValue(ctx, outcomeKey{}, o), o
}

func (o *outcome) get() string { return o.v }

func setOutcome(ctx context.Context, v string) {
	if o, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
		o.v = v
	}
}
