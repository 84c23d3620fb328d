package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/platform/shared/retry"
)

var (
	errGatewayDown = errors.New("gateway: 503")                           // unknown: transient
	errDeclined    = retry.Permanent(errors.New("gateway: 422 bad card")) // permanent
)

// transitions records state changes; safe for concurrent use.
type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) hook(name string, from, to State) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.got = append(tr.got, fmt.Sprintf("%s:%s->%s", name, from, to))
}

func (tr *transitions) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.got, " ")
}

func newBreaker(t *testing.T, cfg Config) (*Breaker, *transitions) {
	t.Helper()
	tr := &transitions{}
	if cfg.Name == "" {
		cfg.Name = "gw"
	}
	cfg.OnStateChange = tr.hook
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b, tr
}

func fail(n int, b *Breaker, err error) {
	for range n {
		_ = b.Execute(context.Background(), func(ctx context.Context) error { return err })
	}
}

// waitState polls b until it reports want or the bounded deadline passes.
func waitState(t *testing.T, b *Breaker, want State, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for b.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("state = %v after %v, want %v", b.State(), within, want)
		}
		<-tick.C
	}
}

func assertRejected(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrOpen) || !retry.IsTransient(err) || !errors.Is(err, retry.ErrTransient) {
		t.Fatalf("err = %v: want ErrOpen, transient", err)
	}
}

func TestOpensAfterConsecutiveFailuresAndRejects(t *testing.T) {
	b, tr := newBreaker(t, Config{ConsecutiveFailures: 3, OpenTimeout: time.Hour})
	fail(2, b, errGatewayDown)
	if b.State() != StateClosed {
		t.Fatalf("state after 2 failures = %v", b.State())
	}
	err := b.Execute(context.Background(), func(ctx context.Context) error { return fmt.Errorf("charge: %w", errGatewayDown) })
	if !errors.Is(err, errGatewayDown) {
		t.Fatalf("Execute must return fn's error unchanged, got %v", err)
	}
	if b.State() != StateOpen {
		t.Fatalf("state after 3 failures = %v", b.State())
	}
	called := false
	err = b.Execute(context.Background(), func(ctx context.Context) error { called = true; return nil })
	if called {
		t.Fatal("fn called while open")
	}
	assertRejected(t, err)
	if !strings.Contains(err.Error(), "gw") {
		t.Fatalf("error %q does not name the breaker", err)
	}
	if got := tr.String(); got != "gw:closed->open" {
		t.Fatalf("transitions = %q", got)
	}
}

func TestSuccessResetsConsecutiveFailures(t *testing.T) {
	b, _ := newBreaker(t, Config{ConsecutiveFailures: 3})
	fail(2, b, errGatewayDown)
	fail(1, b, nil)
	fail(2, b, errGatewayDown)
	if b.State() != StateClosed {
		t.Fatalf("state = %v, want closed", b.State())
	}
}

func TestPermanentErrorsDoNotTrip(t *testing.T) {
	b, tr := newBreaker(t, Config{ConsecutiveFailures: 3})
	for range 50 {
		err := b.Execute(context.Background(), func(ctx context.Context) error { return errDeclined })
		if !errors.Is(err, errDeclined) || !retry.IsPermanent(err) {
			t.Fatalf("err = %v, want the permanent error unchanged", err)
		}
	}
	// A permanent answer also breaks a run of transient failures.
	fail(2, b, errGatewayDown)
	fail(1, b, errDeclined)
	fail(2, b, errGatewayDown)
	if b.State() != StateClosed || tr.String() != "" {
		t.Fatalf("state = %v, transitions %q; want closed, none", b.State(), tr)
	}
	fail(1, b, errGatewayDown)
	if b.State() != StateOpen {
		t.Fatalf("state = %v after 3 transient failures in a row", b.State())
	}
}

func TestCallerCancellationIsNotCounted(t *testing.T) {
	b, _ := newBreaker(t, Config{ConsecutiveFailures: 2})
	for range 10 {
		ctx, cancel := context.WithCancel(context.Background())
		err := b.Execute(ctx, func(ctx context.Context) error {
			cancel() // the caller gives up mid-call
			<-ctx.Done()
			return ctx.Err()
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	}
	if b.State() != StateClosed {
		t.Fatalf("state = %v: caller cancellation must not count", b.State())
	}
	// A dependency that is too slow for the deadline does count.
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_ = b.Execute(ctx, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		cancel()
	}
	if b.State() != StateOpen {
		t.Fatalf("state = %v: deadline exceeded must count as a failure", b.State())
	}
}

func TestContextDoneBeforeCall(t *testing.T) {
	b, _ := newBreaker(t, Config{ConsecutiveFailures: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	err := b.Execute(ctx, func(ctx context.Context) error { called = true; return nil })
	if called || !errors.Is(err, context.Canceled) || errors.Is(err, ErrOpen) {
		t.Fatalf("called = %v, err = %v", called, err)
	}
	if b.State() != StateClosed {
		t.Fatalf("state = %v", b.State())
	}
}

func TestFailureRatio(t *testing.T) {
	b, _ := newBreaker(t, Config{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 4})
	fail(1, b, nil)
	fail(1, b, errGatewayDown)
	fail(1, b, nil)
	if b.State() != StateClosed {
		t.Fatalf("state = %v before MinRequests", b.State())
	}
	fail(1, b, errDeclined) // permanent counts as success: 1/4
	fail(1, b, errGatewayDown)
	if b.State() != StateClosed { // 2/5 < 0.5
		t.Fatalf("state = %v at 2/5 failures", b.State())
	}
	fail(1, b, errGatewayDown) // 3/6
	if b.State() != StateOpen {
		t.Fatalf("state = %v at 3/6 failures, want open", b.State())
	}
}

func TestHalfOpenAfterTimeoutThenClosesOnSuccess(t *testing.T) {
	b, tr := newBreaker(t, Config{ConsecutiveFailures: 1, OpenTimeout: 20 * time.Millisecond, HalfOpenMaxRequests: 1})
	fail(1, b, errGatewayDown)
	if b.State() != StateOpen {
		t.Fatalf("state = %v", b.State())
	}
	waitState(t, b, StateHalfOpen, 5*time.Second)

	// One trial call is in flight: a second caller is rejected with ErrOpen.
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- b.Execute(context.Background(), func(ctx context.Context) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	called := false
	err := b.Execute(context.Background(), func(ctx context.Context) error { called = true; return nil })
	if called {
		t.Fatal("second trial call let through")
	}
	assertRejected(t, err)
	if !strings.Contains(err.Error(), "half-open") {
		t.Fatalf("err = %q, want it to say half-open", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("trial call: %v", err)
	}
	if b.State() != StateClosed {
		t.Fatalf("state = %v after a successful trial", b.State())
	}
	if want := "gw:closed->open gw:open->half-open gw:half-open->closed"; tr.String() != want {
		t.Fatalf("transitions = %q, want %q", tr, want)
	}
}

func TestHalfOpenFailureReopens(t *testing.T) {
	b, tr := newBreaker(t, Config{ConsecutiveFailures: 1, OpenTimeout: 20 * time.Millisecond, HalfOpenMaxRequests: 2})
	fail(1, b, errGatewayDown)
	waitState(t, b, StateHalfOpen, 5*time.Second)
	fail(1, b, nil) // 1 of 2 successes needed
	if b.State() != StateHalfOpen {
		t.Fatalf("state = %v after 1 of 2 trial successes", b.State())
	}
	fail(1, b, errGatewayDown)
	if want := "gw:closed->open gw:open->half-open gw:half-open->open"; tr.String() != want {
		t.Fatalf("transitions = %q, want %q", tr, want)
	}
	assertRejected(t, b.Execute(context.Background(), func(ctx context.Context) error { return nil }))
}

func TestConcurrentCallers(t *testing.T) {
	const goroutines, calls, threshold = 32, 200, 10
	b, tr := newBreaker(t, Config{ConsecutiveFailures: threshold, OpenTimeout: time.Hour})
	var invoked, rejected, other atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			<-start
			for range calls {
				err := b.Execute(context.Background(), func(ctx context.Context) error {
					invoked.Add(1)
					return errGatewayDown
				})
				switch {
				case errors.Is(err, ErrOpen):
					rejected.Add(1)
				case errors.Is(err, errGatewayDown):
				default:
					other.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if other.Load() != 0 {
		t.Fatalf("%d unexpected errors", other.Load())
	}
	if total := invoked.Load() + rejected.Load(); total != goroutines*calls {
		t.Fatalf("invoked %d + rejected %d != %d calls", invoked.Load(), rejected.Load(), goroutines*calls)
	}
	// Once open, only calls already in flight (at most one per goroutine)
	// may still reach the dependency.
	if n := invoked.Load(); n < threshold || n > threshold+goroutines-1 {
		t.Fatalf("dependency called %d times, want between %d and %d", n, threshold, threshold+goroutines-1)
	}
	if b.State() != StateOpen || tr.String() != "gw:closed->open" {
		t.Fatalf("state = %v, transitions %q", b.State(), tr)
	}
}

func TestConcurrentMixedCallsStayClosed(t *testing.T) {
	b, _ := newBreaker(t, Config{ConsecutiveFailures: 1000})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				var err error
				switch (g + i) % 3 {
				case 1:
					err = errDeclined
				case 2:
					err = errGatewayDown
				}
				v, got := Call(context.Background(), b, func(ctx context.Context) (int, error) { return i, err })
				if got != err || (err == nil && v != i) {
					t.Errorf("Call = %v, %v; want %v, %v", v, got, i, err)
					return
				}
				_ = b.State()
			}
		})
	}
	wg.Wait()
	if b.State() != StateClosed {
		t.Fatalf("state = %v", b.State())
	}
}

func TestCallReturnsResultAndZeroWhenRejected(t *testing.T) {
	b, _ := newBreaker(t, Config{ConsecutiveFailures: 1, OpenTimeout: time.Hour})
	v, err := Call(context.Background(), b, func(ctx context.Context) (string, error) { return "auth-123", nil })
	if v != "auth-123" || err != nil {
		t.Fatalf("Call = %q, %v", v, err)
	}
	v, err = Call(context.Background(), b, func(ctx context.Context) (string, error) { return "partial", errGatewayDown })
	if v != "partial" || !errors.Is(err, errGatewayDown) {
		t.Fatalf("Call = %q, %v: want fn's result and error", v, err)
	}
	v, err = Call(context.Background(), b, func(ctx context.Context) (string, error) { return "x", nil })
	if v != "" {
		t.Fatalf("rejected Call returned %q", v)
	}
	assertRejected(t, err)
}

func TestPanicCountsAsFailureAndPropagates(t *testing.T) {
	b, _ := newBreaker(t, Config{ConsecutiveFailures: 1, OpenTimeout: time.Hour})
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want boom", r)
			}
		}()
		_ = b.Execute(context.Background(), func(ctx context.Context) error { panic("boom") })
	}()
	if b.State() != StateOpen {
		t.Fatalf("state = %v after a panic", b.State())
	}
}

func TestRetryDoStopsRetryingWhileOpen(t *testing.T) {
	b, _ := newBreaker(t, Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour})
	calls := 0
	err := retry.Do(context.Background(), retry.Policy{MaxAttempts: 5, Initial: time.Microsecond, Max: time.Microsecond},
		func(ctx context.Context) error {
			return b.Execute(ctx, func(ctx context.Context) error { calls++; return errGatewayDown })
		})
	if calls != 2 || !errors.Is(err, ErrOpen) || !retry.IsTransient(err) {
		t.Fatalf("calls = %d, err = %v", calls, err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"name only", Config{Name: "gw"}, nil},
		{"full", Config{Name: "gw", ConsecutiveFailures: 3, FailureRatio: 1, MinRequests: 1, Interval: time.Second, OpenTimeout: time.Second, HalfOpenMaxRequests: 2}, nil},
		{"no name", Config{}, ErrNoName},
		{"negative consecutive", Config{Name: "gw", ConsecutiveFailures: -1}, ErrInvalidConsecutiveFailures},
		{"huge consecutive", Config{Name: "gw", ConsecutiveFailures: math.MaxUint32 + 1}, ErrInvalidConsecutiveFailures},
		{"ratio above 1", Config{Name: "gw", FailureRatio: 1.5}, ErrInvalidFailureRatio},
		{"ratio negative", Config{Name: "gw", FailureRatio: -0.1}, ErrInvalidFailureRatio},
		{"ratio NaN", Config{Name: "gw", FailureRatio: math.NaN()}, ErrInvalidFailureRatio},
		{"negative min requests", Config{Name: "gw", MinRequests: -1}, ErrInvalidMinRequests},
		{"negative interval", Config{Name: "gw", Interval: -time.Second}, ErrInvalidInterval},
		{"negative open timeout", Config{Name: "gw", OpenTimeout: -time.Second}, ErrInvalidOpenTimeout},
		{"negative half-open", Config{Name: "gw", HalfOpenMaxRequests: -1}, ErrInvalidHalfOpenMaxRequests},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
			b, err := New(tc.cfg)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (b != nil) {
				t.Fatalf("New = %v, %v", b, err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	b, _ := newBreaker(t, Config{})
	fail(DefaultConsecutiveFailures-1, b, errGatewayDown)
	if b.State() != StateClosed {
		t.Fatalf("opened before %d failures", DefaultConsecutiveFailures)
	}
	fail(1, b, errGatewayDown)
	if b.State() != StateOpen {
		t.Fatalf("not open after %d failures", DefaultConsecutiveFailures)
	}
	if b.Name() != "gw" {
		t.Fatalf("Name = %q", b.Name())
	}
}

func TestLogStateChanges(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	b, err := New(Config{Name: "payment-gateway", ConsecutiveFailures: 1, OnStateChange: LogStateChanges(logger)})
	if err != nil {
		t.Fatal(err)
	}
	fail(1, b, errGatewayDown)
	out := buf.String()
	for _, want := range []string{`"level":"WARN"`, `"breaker":"payment-gateway"`, `"from":"closed"`, `"to":"open"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %s", out, want)
		}
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateClosed: "closed", StateHalfOpen: "half-open", StateOpen: "open", State(9): "State(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), want)
		}
	}
}
