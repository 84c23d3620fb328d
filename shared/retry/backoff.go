package retry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"time"

	"google.golang.org/api/googleapi"
)

// Policy defaults, used for zero fields.
const (
	DefaultMaxAttempts = 3
	DefaultInitial     = 100 * time.Millisecond
	DefaultMax         = 5 * time.Second
	DefaultMultiplier  = 2.0
	DefaultBudget      = 10 * time.Second
)

// Sentinel errors returned by Policy.Validate.
var (
	ErrInvalidMaxAttempts = errors.New("retry: MaxAttempts must not be negative")
	ErrInvalidInitial     = errors.New("retry: Initial must not be negative")
	ErrInvalidMax         = errors.New("retry: Max must not be below Initial")
	ErrInvalidMultiplier  = errors.New("retry: Multiplier must be at least 1 (or 0 for the default)")
	ErrInvalidBudget      = errors.New("retry: Budget must not be negative")
)

// Policy says how Do retries. The zero value is valid; every zero field
// takes its default (see the package documentation).
type Policy struct {
	// MaxAttempts is the total number of calls, the first one included
	// (default 3; 1 disables retrying).
	MaxAttempts int
	// Initial is the upper bound of the first wait (default 100ms).
	Initial time.Duration
	// Max caps the upper bound of every computed wait (default 5s). A
	// Retry-After floor may exceed it.
	Max time.Duration
	// Multiplier is the growth of the upper bound per retry (default 2).
	Multiplier float64
	// Budget is the time from the start of Do past which no wait may end
	// (default 10s): a wait that would end later is not begun and Do returns
	// the last error. It never extends the context deadline. A running call
	// of fn is bounded only by its context.
	Budget time.Duration

	// hooks replaces the clock, the sleep and the random source in tests.
	hooks *hooks
}

type hooks struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	// randN returns a uniform value in [0, n].
	randN func(n int64) int64
}

func (p *Policy) setDefaults() {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.Initial == 0 {
		p.Initial = DefaultInitial
	}
	if p.Max == 0 {
		p.Max = DefaultMax
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultMultiplier
	}
	if p.Budget == 0 {
		p.Budget = DefaultBudget
	}
}

// Validate reports the first invalid field, after applying defaults to zero
// fields, as one of the ErrInvalid* sentinels.
func (p Policy) Validate() error {
	p.setDefaults()
	switch {
	case p.MaxAttempts < 0:
		return ErrInvalidMaxAttempts
	case p.Initial < 0:
		return ErrInvalidInitial
	case p.Max < p.Initial:
		return ErrInvalidMax
	case p.Multiplier < 1 || math.IsNaN(p.Multiplier) || math.IsInf(p.Multiplier, 0):
		return ErrInvalidMultiplier
	case p.Budget < 0:
		return ErrInvalidBudget
	}
	return nil
}

// Backoff returns the upper bound of the wait before retry n (n = 1 after
// the first failed call): min(Max, Initial*Multiplier^(n-1)), with defaults
// applied to zero fields. n < 1 counts as 1.
func (p Policy) Backoff(n int) time.Duration {
	p.setDefaults()
	if n < 1 {
		n = 1
	}
	d := float64(p.Initial) * math.Pow(p.Multiplier, float64(n-1))
	if d >= float64(p.Max) || math.IsNaN(d) {
		return p.Max
	}
	return time.Duration(d)
}

// Exponential returns min * 2^(attempt-1), capped at max, without jitter:
// the delay a Pub/Sub subscription's retry policy uses before redelivery
// number attempt. attempt < 1 counts as 1; a result below min is min.
func Exponential(attempt int, min, max time.Duration) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if min <= 0 {
		return 0
	}
	if max < min {
		max = min
	}
	d := min
	for i := 1; i < attempt; i++ {
		if d > max/2 {
			return max
		}
		d *= 2
	}
	return d
}

// AttemptsError is the error Do returns: the last error of fn (or, when the
// context ended while waiting, the context error joined with it) and the
// number of calls made. It unwraps to Err, so the class and the errors.Is /
// errors.As chain of the last error are kept.
type AttemptsError struct {
	Attempts int
	Err      error
}

func (e *AttemptsError) Error() string {
	if e.Attempts == 1 {
		return e.Err.Error()
	}
	return fmt.Sprintf("after %d attempts: %v", e.Attempts, e.Err)
}

// Unwrap returns Err.
func (e *AttemptsError) Unwrap() error { return e.Err }

type attemptKey struct{}

// AttemptFromContext returns the 1-based number of the current call of fn
// inside Do, or 0 when ctx does not come from Do.
func AttemptFromContext(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}

// Do calls fn until it returns nil, returns a permanent error, or the policy
// runs out, and returns nil or an *AttemptsError wrapping the last error.
//
// After a transient error Do waits a random duration in [0, p.Backoff(n)]
// (full jitter), raised to the error's Retry-After if that is longer, then
// calls fn again. Do never waits past the earlier of ctx's deadline and
// start+Budget: if the next wait would end after it, Do returns the last
// (transient) error at once. If ctx ends while waiting Do returns at once
// with an error that matches both ctx.Err() and the last error, classified
// transient. If ctx is already done before the first call, fn is not called.
// An invalid policy is reported as a permanent error wrapping the Validate
// sentinel.
//
// fn receives ctx with the attempt number (AttemptFromContext). Do is safe
// for concurrent use; it calls fn sequentially.
func Do(ctx context.Context, p Policy, fn func(ctx context.Context) error) error {
	if err := p.Validate(); err != nil {
		return Permanent(fmt.Errorf("retry policy: %w", err))
	}
	p.setDefaults()
	now, sleep, randN := time.Now, Sleep, randUniform
	if h := p.hooks; h != nil {
		if h.now != nil {
			now = h.now
		}
		if h.sleep != nil {
			sleep = h.sleep
		}
		if h.randN != nil {
			randN = h.randN
		}
	}

	deadline := now().Add(p.Budget)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := ctx.Err(); err != nil {
		return &AttemptsError{Attempts: 0, Err: err}
	}

	for attempt := 1; ; attempt++ {
		err := fn(context.WithValue(ctx, attemptKey{}, attempt))
		if err == nil {
			return nil
		}
		if IsPermanent(err) || attempt >= p.MaxAttempts {
			return &AttemptsError{Attempts: attempt, Err: err}
		}
		wait := time.Duration(randN(int64(p.Backoff(attempt))))
		if ra := retryAfter(err); ra > wait {
			wait = ra
		}
		if now().Add(wait).After(deadline) {
			return &AttemptsError{Attempts: attempt, Err: err}
		}
		if serr := sleep(ctx, wait); serr != nil {
			return &AttemptsError{Attempts: attempt, Err: Transient(fmt.Errorf("%w while waiting to retry: %w", serr, err))}
		}
	}
}

// retryAfter returns the Retry-After carried by err, or 0.
func retryAfter(err error) time.Duration {
	var he *HTTPStatusError
	if errors.As(err, &he) {
		return he.RetryAfter
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Header != nil {
		now := time.Now()
		if d, perr := http.ParseTime(ge.Header.Get("Date")); perr == nil {
			now = d
		}
		d, _ := ParseRetryAfter(ge.Header.Get("Retry-After"), now)
		return d
	}
	return 0
}

// Sleep waits d or until ctx is done, whichever comes first, and returns
// ctx.Err() in the second case (at once when d <= 0). It is safe for
// concurrent use.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// randUniform returns a uniform value in [0, n].
func randUniform(n int64) int64 {
	if n <= 0 {
		return 0
	}
	if n == math.MaxInt64 {
		return rand.Int64()
	}
	return rand.Int64N(n + 1)
}
