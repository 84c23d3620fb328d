package retry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"google.golang.org/api/googleapi"
)

// fakeTime is a test clock: sleep advances it and records the wait; randN
// defaults to the upper bound so waits are exact.
type fakeTime struct {
	now   time.Time
	waits []time.Duration
	randN func(n int64) int64
}

func newFakeTime(start time.Time) *fakeTime {
	return &fakeTime{now: start, randN: func(n int64) int64 { return n }}
}

func (f *fakeTime) policy(p Policy) Policy {
	p.hooks = &hooks{
		now: func() time.Time { return f.now },
		sleep: func(ctx context.Context, d time.Duration) error {
			f.waits = append(f.waits, d)
			f.now = f.now.Add(d)
			return nil
		},
		randN: func(n int64) int64 { return f.randN(n) },
	}
	return p
}

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func equalWaits(t *testing.T, got, want []time.Duration) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("waits = %v, want %v", got, want)
	}
}

type gatewayErr struct{ n int }

func (e *gatewayErr) Error() string { return fmt.Sprintf("gateway hiccup %d", e.n) }

func TestDoPermanentStopsAfterOneCall(t *testing.T) {
	ft := newFakeTime(time.Unix(0, 0))
	cause := errors.New("card number malformed")
	calls := 0
	err := Do(context.Background(), ft.policy(Policy{MaxAttempts: 5}), func(ctx context.Context) error {
		calls++
		return Permanent(cause)
	})
	if calls != 1 {
		t.Fatalf("calls = %d, want 1", calls)
	}
	equalWaits(t, ft.waits, nil)
	if !IsPermanent(err) || !errors.Is(err, cause) || !errors.Is(err, ErrPermanent) {
		t.Fatalf("err = %v: want permanent, wrapping the cause", err)
	}
	var ae *AttemptsError
	if !errors.As(err, &ae) || ae.Attempts != 1 {
		t.Fatalf("AttemptsError = %+v, want Attempts 1", ae)
	}
}

func TestDoPermanentByRuleStops(t *testing.T) {
	ft := newFakeTime(time.Unix(0, 0))
	calls := 0
	err := Do(context.Background(), ft.policy(Policy{MaxAttempts: 5}), func(ctx context.Context) error {
		calls++
		return fmt.Errorf("charge: %w", &HTTPStatusError{StatusCode: 402})
	})
	var he *HTTPStatusError
	if calls != 1 || !IsPermanent(err) || !errors.As(err, &he) || he.StatusCode != 402 {
		t.Fatalf("calls = %d, err = %v", calls, err)
	}
}

func TestDoTransientRetriedToMaxAttempts(t *testing.T) {
	ft := newFakeTime(time.Unix(0, 0))
	var attempts []int
	err := Do(context.Background(), ft.policy(Policy{MaxAttempts: 5}), func(ctx context.Context) error {
		n := AttemptFromContext(ctx)
		attempts = append(attempts, n)
		return &gatewayErr{n: n}
	})
	if fmt.Sprint(attempts) != "[1 2 3 4 5]" {
		t.Fatalf("attempts seen by fn = %v", attempts)
	}
	// Upper bounds with defaults: 100ms * 2^(n-1).
	equalWaits(t, ft.waits, ms(100, 200, 400, 800))
	var ge *gatewayErr
	if !IsTransient(err) || !errors.As(err, &ge) || ge.n != 5 {
		t.Fatalf("err = %v: want the last (5th) error, transient", err)
	}
	var ae *AttemptsError
	if !errors.As(err, &ae) || ae.Attempts != 5 {
		t.Fatalf("AttemptsError = %+v", ae)
	}
	if want := "after 5 attempts: gateway hiccup 5"; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestDoSucceedsAfterTransientFailures(t *testing.T) {
	ft := newFakeTime(time.Unix(0, 0))
	calls := 0
	err := Do(context.Background(), ft.policy(Policy{}), func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return context.DeadlineExceeded
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err = %v, calls = %d", err, calls)
	}
	equalWaits(t, ft.waits, ms(100, 200))
}

func TestDoWaitsCappedAtMax(t *testing.T) {
	ft := newFakeTime(time.Unix(0, 0))
	_ = Do(context.Background(), ft.policy(Policy{MaxAttempts: 6, Initial: time.Second, Max: 3 * time.Second, Multiplier: 3, Budget: time.Hour}),
		func(ctx context.Context) error { return errors.New("x") })
	equalWaits(t, ft.waits, []time.Duration{time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second})
}

func TestDoFullJitterUsesDraw(t *testing.T) {
	ft := newFakeTime(time.Unix(0, 0))
	var bounds []int64
	ft.randN = func(n int64) int64 { bounds = append(bounds, n); return n / 4 }
	_ = Do(context.Background(), ft.policy(Policy{MaxAttempts: 4}), func(ctx context.Context) error { return errors.New("x") })
	if fmt.Sprint(bounds) != fmt.Sprint([]int64{int64(100 * time.Millisecond), int64(200 * time.Millisecond), int64(400 * time.Millisecond)}) {
		t.Fatalf("bounds = %v", bounds)
	}
	equalWaits(t, ft.waits, ms(25, 50, 100))
}

func TestDoRetryAfterIsAFloor(t *testing.T) {
	ft := newFakeTime(time.Unix(0, 0))
	ft.randN = func(n int64) int64 { return 0 }
	calls := 0
	_ = Do(context.Background(), ft.policy(Policy{MaxAttempts: 4, Budget: time.Minute}), func(ctx context.Context) error {
		calls++
		switch calls {
		case 1:
			return &HTTPStatusError{StatusCode: 429, RetryAfter: 7 * time.Second} // above Max: still honoured
		case 2:
			return fmt.Errorf("wrapped: %w", &googleapi.Error{Code: 503, Header: http.Header{"Retry-After": {"2"}}})
		default:
			return &HTTPStatusError{StatusCode: 503}
		}
	})
	equalWaits(t, ft.waits, []time.Duration{7 * time.Second, 2 * time.Second, 0})

	// A Retry-After below the jittered wait does not lower it.
	ft = newFakeTime(time.Unix(0, 0))
	_ = Do(context.Background(), ft.policy(Policy{MaxAttempts: 2}), func(ctx context.Context) error {
		return &HTTPStatusError{StatusCode: 503, RetryAfter: 10 * time.Millisecond}
	})
	equalWaits(t, ft.waits, ms(100))
}

func TestDoStopsAtBudget(t *testing.T) {
	ft := newFakeTime(time.Unix(0, 0))
	calls := 0
	err := Do(context.Background(), ft.policy(Policy{MaxAttempts: 100, Initial: time.Second, Max: time.Minute, Budget: 4 * time.Second}),
		func(ctx context.Context) error {
			calls++
			ft.now = ft.now.Add(250 * time.Millisecond) // each call takes time too
			return &gatewayErr{n: calls}
		})
	// t=0.25 wait 1s -> 1.25, call -> 1.5, wait 2s -> 3.5, call -> 3.75, wait 4s would end at 7.75 > 4.
	equalWaits(t, ft.waits, []time.Duration{time.Second, 2 * time.Second})
	var ge *gatewayErr
	if calls != 3 || !IsTransient(err) || !errors.As(err, &ge) || ge.n != 3 {
		t.Fatalf("calls = %d, err = %v", calls, err)
	}
	var ae *AttemptsError
	if !errors.As(err, &ae) || ae.Attempts != 3 {
		t.Fatalf("AttemptsError = %+v", ae)
	}
}

func TestDoBudgetNeverOutlivesDeadline(t *testing.T) {
	start := time.Now()
	ft := newFakeTime(start)
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(500*time.Millisecond))
	defer cancel()
	calls := 0
	err := Do(ctx, ft.policy(Policy{MaxAttempts: 100, Budget: time.Hour}), func(ctx context.Context) error {
		calls++
		return errors.New("busy")
	})
	// 100ms -> t=100, 200ms -> t=300, 400ms would end at 700 > 500.
	equalWaits(t, ft.waits, ms(100, 200))
	if calls != 3 || !IsTransient(err) {
		t.Fatalf("calls = %d, err = %v", calls, err)
	}
}

func TestDoJitterWithinBounds(t *testing.T) {
	p := Policy{MaxAttempts: 6, Initial: 100 * time.Millisecond, Max: time.Second, Budget: time.Hour}
	const runs = 2000
	sums := make([]float64, p.MaxAttempts-1)
	var zeroSeen, boundSeen bool
	for range runs {
		var waits []time.Duration
		q := p
		q.hooks = &hooks{sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
		_ = Do(context.Background(), q, func(ctx context.Context) error { return errors.New("x") })
		if len(waits) != p.MaxAttempts-1 {
			t.Fatalf("waits = %v", waits)
		}
		for i, w := range waits {
			bound := p.Backoff(i + 1)
			if w < 0 || w > bound {
				t.Fatalf("wait %d = %v outside [0, %v]", i+1, w, bound)
			}
			sums[i] += float64(w) / float64(bound)
			zeroSeen = zeroSeen || w < bound/20
			boundSeen = boundSeen || w > bound*19/20
		}
	}
	for i, s := range sums {
		if mean := s / runs; math.Abs(mean-0.5) > 0.05 {
			t.Errorf("wait %d: mean fraction of the bound = %.3f, want about 0.5 (uniform)", i+1, mean)
		}
	}
	if !zeroSeen || !boundSeen {
		t.Errorf("draws do not cover the range: near zero %v, near bound %v", zeroSeen, boundSeen)
	}
}

func TestDoCancelWhileWaitingReturnsPromptly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waiting := make(chan struct{})
	p := Policy{MaxAttempts: 3, Initial: time.Hour, Max: time.Hour, Budget: 2 * time.Hour}
	p.hooks = &hooks{
		randN: func(n int64) int64 { return n },
		sleep: func(ctx context.Context, d time.Duration) error {
			close(waiting)
			return Sleep(ctx, d) // the real timer
		},
	}
	go func() {
		<-waiting
		cancel()
	}()
	last := &gatewayErr{n: 1}
	start := time.Now()
	err := Do(ctx, p, func(ctx context.Context) error { return last })
	if elapsed := time.Since(start); elapsed >= time.Hour {
		t.Fatalf("Do waited %v", elapsed)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, last) || !IsTransient(err) {
		t.Fatalf("err = %v: want context.Canceled and the last error, transient", err)
	}
	var ae *AttemptsError
	if !errors.As(err, &ae) || ae.Attempts != 1 {
		t.Fatalf("AttemptsError = %+v", ae)
	}
}

func TestDoRealTimerRespectsDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	calls := 0
	err := Do(ctx, Policy{MaxAttempts: 1000, Initial: 20 * time.Millisecond, Max: 80 * time.Millisecond}, func(ctx context.Context) error {
		calls++
		return errors.New("busy")
	})
	if now := time.Now(); !now.Before(deadline) {
		t.Fatalf("Do returned %v after the deadline", now.Sub(deadline))
	}
	if calls < 2 || calls >= 1000 || !IsTransient(err) {
		t.Fatalf("calls = %d, err = %v", calls, err)
	}
}

func TestDoContextDoneBeforeFirstCall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	err := Do(ctx, Policy{}, func(ctx context.Context) error { called = true; return nil })
	if called || !errors.Is(err, context.Canceled) || !IsTransient(err) {
		t.Fatalf("called = %v, err = %v", called, err)
	}
}

func TestAttemptFromContextOutsideDo(t *testing.T) {
	if n := AttemptFromContext(context.Background()); n != 0 {
		t.Fatalf("AttemptFromContext = %d, want 0", n)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want error
	}{
		{"zero value", Policy{}, nil},
		{"explicit", Policy{MaxAttempts: 1, Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, Budget: time.Second}, nil},
		{"negative attempts", Policy{MaxAttempts: -1}, ErrInvalidMaxAttempts},
		{"negative initial", Policy{Initial: -time.Second}, ErrInvalidInitial},
		{"max below initial", Policy{Initial: 10 * time.Second}, ErrInvalidMax},
		{"negative max", Policy{Max: -1}, ErrInvalidMax},
		{"multiplier below 1", Policy{Multiplier: 0.5}, ErrInvalidMultiplier},
		{"multiplier NaN", Policy{Multiplier: math.NaN()}, ErrInvalidMultiplier},
		{"multiplier Inf", Policy{Multiplier: math.Inf(1)}, ErrInvalidMultiplier},
		{"negative budget", Policy{Budget: -time.Second}, ErrInvalidBudget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Validate(); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				return
			}
			called := false
			err := Do(context.Background(), tc.p, func(ctx context.Context) error { called = true; return nil })
			if called || !errors.Is(err, tc.want) || !IsPermanent(err) {
				t.Fatalf("Do with invalid policy: called = %v, err = %v", called, err)
			}
		})
	}
}

func TestPolicyBackoff(t *testing.T) {
	var zero Policy
	for n, want := range map[int]time.Duration{-1: 100 * time.Millisecond, 0: 100 * time.Millisecond, 1: 100 * time.Millisecond,
		2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 6: 3200 * time.Millisecond, 7: 5 * time.Second, 1000: 5 * time.Second} {
		if got := zero.Backoff(n); got != want {
			t.Errorf("Policy{}.Backoff(%d) = %v, want %v", n, got, want)
		}
	}
	p := Policy{Initial: time.Second, Max: time.Minute, Multiplier: 1.5}
	if got, want := p.Backoff(3), 2250*time.Millisecond; got != want {
		t.Errorf("Backoff(3) = %v, want %v", got, want)
	}
}

func TestExponential(t *testing.T) {
	min, max := 10*time.Second, 600*time.Second
	want := []time.Duration{10, 20, 40, 80, 160, 320, 600, 600}
	for i, w := range want {
		if got := Exponential(i+1, min, max); got != w*time.Second {
			t.Errorf("Exponential(%d) = %v, want %v", i+1, got, w*time.Second)
		}
	}
	tests := []struct {
		attempt  int
		min, max time.Duration
		want     time.Duration
	}{
		{0, time.Second, time.Minute, time.Second},
		{-5, time.Second, time.Minute, time.Second},
		{1 << 30, time.Second, time.Minute, time.Minute},
		{64, time.Duration(1 << 62), time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)},
		{3, time.Minute, time.Second, time.Minute}, // max below min: min wins
		{3, 0, time.Minute, 0},
	}
	for _, tc := range tests {
		if got := Exponential(tc.attempt, tc.min, tc.max); got != tc.want {
			t.Errorf("Exponential(%d, %v, %v) = %v, want %v", tc.attempt, tc.min, tc.max, got, tc.want)
		}
	}
}

func TestRandUniform(t *testing.T) {
	if randUniform(0) != 0 || randUniform(-3) != 0 {
		t.Fatal("randUniform of a non-positive bound must be 0")
	}
	seen := map[int64]bool{}
	for range 1000 {
		v := randUniform(3)
		if v < 0 || v > 3 {
			t.Fatalf("randUniform(3) = %d", v)
		}
		seen[v] = true
	}
	if len(seen) != 4 {
		t.Fatalf("randUniform(3) covered %v, want 0..3 inclusive", seen)
	}
	if v := randUniform(math.MaxInt64); v < 0 {
		t.Fatalf("randUniform(MaxInt64) = %d", v)
	}
}
