// Package breaker is a circuit breaker for outbound calls (the payment
// gateway, other HTTP or gRPC dependencies), built on gobreaker.
//
// A Breaker counts only transient failures (retry.Classify decides): a
// permanent error such as a 4xx from the gateway proves the dependency is
// up and answering, so it counts as a success; an error returned after the
// caller cancelled its own context is not counted at all. After too many
// failures the breaker opens and rejects calls at once, without calling
// fn, with an error that matches ErrOpen and is transient, so the handler
// retries later and Pub/Sub redelivers instead of dead-lettering. After
// OpenTimeout it lets HalfOpenMaxRequests trial calls through: if they all
// succeed it closes, the first failure opens it again.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/sony/gobreaker/v2"

	"example.com/platform/shared/retry"
)

// Config defaults, used for zero fields.
const (
	DefaultConsecutiveFailures = 5
	DefaultMinRequests         = 10
	DefaultInterval            = 60 * time.Second
	DefaultOpenTimeout         = 30 * time.Second
	DefaultHalfOpenMaxRequests = 1
)

// ErrOpen is matched (errors.Is) by the error a Breaker returns when it
// rejects a call: it is open, or half-open with all trial slots taken.
var ErrOpen = errors.New("circuit breaker open")

// Sentinel errors returned by Config.Validate.
var (
	ErrNoName                     = errors.New("breaker: Name is required")
	ErrInvalidConsecutiveFailures = errors.New("breaker: ConsecutiveFailures must be between 0 and 2^32-1")
	ErrInvalidFailureRatio        = errors.New("breaker: FailureRatio must be between 0 and 1")
	ErrInvalidMinRequests         = errors.New("breaker: MinRequests must be between 0 and 2^32-1")
	ErrInvalidInterval            = errors.New("breaker: Interval must not be negative")
	ErrInvalidOpenTimeout         = errors.New("breaker: OpenTimeout must not be negative")
	ErrInvalidHalfOpenMaxRequests = errors.New("breaker: HalfOpenMaxRequests must be between 0 and 2^32-1")
)

// State is the state of a Breaker.
type State int

// States of a Breaker.
const (
	StateClosed State = iota
	StateHalfOpen
	StateOpen
)

func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half-open"
	case StateOpen:
		return "open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

func fromGobreaker(s gobreaker.State) State {
	switch s {
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	case gobreaker.StateOpen:
		return StateOpen
	}
	return StateClosed
}

// Config configures a Breaker. Zero fields take the defaults named below.
type Config struct {
	// Name identifies the dependency in errors and state changes
	// ("payment-gateway"). Required.
	Name string
	// ConsecutiveFailures opens the breaker after this many transient
	// failures in a row in the closed state (default 5).
	ConsecutiveFailures int
	// FailureRatio, when above 0, also opens the breaker once at least
	// MinRequests calls were counted in the current Interval and the share of
	// transient failures among them reaches FailureRatio. 0 disables it.
	FailureRatio float64
	// MinRequests is the number of counted calls the ratio rule needs
	// (default 10).
	MinRequests int
	// Interval is the closed-state window after which the counts are reset
	// (default 60s).
	Interval time.Duration
	// OpenTimeout is how long the breaker stays open before it lets trial
	// calls through (default 30s).
	OpenTimeout time.Duration
	// HalfOpenMaxRequests is the number of trial calls allowed in the
	// half-open state; that many successes close the breaker (default 1).
	HalfOpenMaxRequests int
	// OnStateChange, if set, is called on every state change. It is called
	// synchronously while the breaker holds its lock: keep it short (a log
	// line) and do not call the Breaker from it. See LogStateChanges.
	OnStateChange func(name string, from, to State)
}

func (c *Config) setDefaults() {
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if c.MinRequests == 0 {
		c.MinRequests = DefaultMinRequests
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.HalfOpenMaxRequests == 0 {
		c.HalfOpenMaxRequests = DefaultHalfOpenMaxRequests
	}
}

// Validate reports the first invalid field, after applying defaults, as one
// of the sentinel errors above.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.Name == "":
		return ErrNoName
	case c.ConsecutiveFailures < 0 || c.ConsecutiveFailures > math.MaxUint32:
		return ErrInvalidConsecutiveFailures
	case !(c.FailureRatio >= 0 && c.FailureRatio <= 1): // also rejects NaN
		return ErrInvalidFailureRatio
	case c.MinRequests < 0 || c.MinRequests > math.MaxUint32:
		return ErrInvalidMinRequests
	case c.Interval < 0:
		return ErrInvalidInterval
	case c.OpenTimeout < 0:
		return ErrInvalidOpenTimeout
	case c.HalfOpenMaxRequests < 0 || c.HalfOpenMaxRequests > math.MaxUint32:
		return ErrInvalidHalfOpenMaxRequests
	}
	return nil
}

// LogStateChanges returns an OnStateChange hook that logs every state
// change on logger: a warning when the breaker opens, info otherwise.
func LogStateChanges(logger *slog.Logger) func(name string, from, to State) {
	return func(name string, from, to State) {
		level := slog.LevelInfo
		if to == StateOpen {
			level = slog.LevelWarn
		}
		logger.Log(context.Background(), level, "circuit breaker state change",
			slog.String("breaker", name), slog.String("from", from.String()), slog.String("to", to.String()))
	}
}

// Breaker guards calls to one dependency. It is safe for concurrent use.
type Breaker struct {
	name string
	cb   *gobreaker.CircuitBreaker[struct{}]
}

// Verdicts handed to gobreaker in place of the caller's error.
var (
	errCountedFailure = errors.New("counted failure")
	errNotCounted     = errors.New("not counted")
)

// New returns a closed Breaker, or the Validate error.
func New(cfg Config) (*Breaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	consecutive := uint32(cfg.ConsecutiveFailures)
	minRequests := uint32(cfg.MinRequests)
	ratio := cfg.FailureRatio
	st := gobreaker.Settings{
		Name:        cfg.Name,
		MaxRequests: uint32(cfg.HalfOpenMaxRequests),
		Interval:    cfg.Interval,
		Timeout:     cfg.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if c.ConsecutiveFailures >= consecutive {
				return true
			}
			done := c.TotalSuccesses + c.TotalFailures // completed, counted calls
			return ratio > 0 && done >= minRequests && float64(c.TotalFailures) >= ratio*float64(done)
		},
		IsSuccessful: func(err error) bool { return err == nil },
		IsExcluded:   func(err error) bool { return err == errNotCounted },
	}
	if hook := cfg.OnStateChange; hook != nil {
		st.OnStateChange = func(name string, from, to gobreaker.State) {
			hook(name, fromGobreaker(from), fromGobreaker(to))
		}
	}
	return &Breaker{name: cfg.Name, cb: gobreaker.NewCircuitBreaker[struct{}](st)}, nil
}

// Name returns the configured name.
func (b *Breaker) Name() string { return b.name }

// State returns the current state (an open breaker whose OpenTimeout has
// passed reports half-open).
func (b *Breaker) State() State { return fromGobreaker(b.cb.State()) }

// Execute calls fn through the breaker and returns its error unchanged, or,
// without calling fn, an error matching ErrOpen (transient) when the breaker
// rejects the call, or ctx's error (not counted) when ctx is already done.
// Transient errors of fn count as failures; nil and permanent errors as
// successes; any error after the caller cancelled ctx is not counted. A
// panic in fn counts as a failure and is re-raised.
func (b *Breaker) Execute(ctx context.Context, fn func(ctx context.Context) error) error {
	_, err := Call(ctx, b, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	return err
}

// Call is Execute for a function with a result. On a rejected call it
// returns the zero T.
func Call[T any](ctx context.Context, b *Breaker, fn func(ctx context.Context) (T, error)) (T, error) {
	var (
		result T
		err    error
	)
	if cerr := ctx.Err(); cerr != nil {
		return result, fmt.Errorf("breaker %s: %w", b.name, cerr)
	}
	_, gerr := b.cb.Execute(func() (struct{}, error) {
		result, err = fn(ctx)
		return struct{}{}, verdict(ctx, err)
	})
	switch {
	case errors.Is(gerr, gobreaker.ErrOpenState):
		var zero T
		return zero, retry.Transient(fmt.Errorf("breaker %s: %w", b.name, ErrOpen))
	case errors.Is(gerr, gobreaker.ErrTooManyRequests):
		var zero T
		return zero, retry.Transient(fmt.Errorf("breaker %s: %w (half-open, trial calls in flight)", b.name, ErrOpen))
	}
	return result, err
}

// verdict maps the caller's error to what gobreaker counts.
func verdict(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.Canceled):
		return errNotCounted // the caller gave up; says nothing about the dependency
	case retry.IsPermanent(err):
		return nil // the dependency answered
	}
	return errCountedFailure
}
