// Package idempotencytest is the conformance suite of idempotency.LeaseStore:
// one set of tests that every implementation (PostgreSQL, in-memory, and
// any a fork adds) must pass, so that callers tested against the in-memory
// store can rely on the same behaviour in production.
package idempotencytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/retry"
)

// Fixture is one fresh, empty store under test.
type Fixture struct {
	Store idempotency.LeaseStore
	// ExpireLeases makes every current lease of Store expired, as if its
	// duration had passed, without moving it more than an hour into the
	// past and without touching completed records. The suite uses it
	// instead of sleeping.
	ExpireLeases func(t *testing.T)
}

// Concurrency is how many goroutines the suite's races use.
const Concurrency = 50

const lease = time.Minute

// Run runs the suite; newStore is called once per subtest and must return
// an empty store (a fresh database, a new in-memory store).
func Run(t *testing.T, newStore func(t *testing.T) Fixture) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Fixture)
	}{
		{"NewKeyIsAcquired", testNewKeyIsAcquired},
		{"DuplicateDuringLeaseIsInProgress", testDuplicateDuringLease},
		{"CompletedKeyReturnsResult", testCompletedKeyReturnsResult},
		{"PayloadMismatchIsPermanent", testPayloadMismatch},
		{"ReleaseFreesClaim", testReleaseFreesClaim},
		{"ExtendKeepsOnlyAHeldClaim", testExtend},
		{"ConcurrentClaimsAcquireOnce", testConcurrentClaimsAcquireOnce},
		{"ExpiredLeaseTakenOverOnce", testExpiredLeaseTakenOverOnce},
		{"CompleteAfterExpiryWithoutTakeover", testCompleteAfterExpiryWithoutTakeover},
		{"KeysArePerConsumer", testKeysArePerConsumer},
		{"Purge", testPurge},
		{"InvalidArguments", testInvalidArguments},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

var hashA, hashB = idempotency.HashPayload([]byte(`{"a":1}`)), idempotency.HashPayload([]byte(`{"a":2}`))

func key(id string) idempotency.Key {
	return idempotency.KeyFor("payment", "//orders/test", id)
}

func mustClaim(t *testing.T, s idempotency.LeaseStore, k idempotency.Key, hash []byte) idempotency.Claim {
	t.Helper()
	c, err := s.Claim(context.Background(), k, hash, lease)
	if err != nil {
		t.Fatalf("Claim(%s): %v", k, err)
	}
	return c
}

func mustAcquire(t *testing.T, s idempotency.LeaseStore, k idempotency.Key, hash []byte) idempotency.Claim {
	t.Helper()
	c := mustClaim(t, s, k, hash)
	if c.State != idempotency.ClaimAcquired {
		t.Fatalf("Claim(%s) state = %s, want acquired", k, c.State)
	}
	return c
}

func wantErr(t *testing.T, err, target, class error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
	if class != nil && !errors.Is(err, class) {
		t.Fatalf("error %v is not %v", err, class)
	}
}

func testNewKeyIsAcquired(t *testing.T, f Fixture) {
	ctx := context.Background()
	before := time.Now()
	c := mustAcquire(t, f.Store, key("e1"), hashA)
	if c.Token == "" || c.Attempt != 1 || c.Key != key("e1") {
		t.Fatalf("claim = %+v, want a token, attempt 1 and the key", c)
	}
	// Allow for clock skew between the test and a database server.
	if c.LeaseExpiresAt.Before(before.Add(lease/2)) || c.LeaseExpiresAt.After(time.Now().Add(2*lease)) {
		t.Fatalf("lease expires at %s, want about %s from %s", c.LeaseExpiresAt, lease, before)
	}
	r, err := f.Store.Inspect(ctx, key("e1"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != idempotency.StatusInProgress || !bytes.Equal(r.PayloadHash, hashA) || r.Attempts != 1 ||
		r.CreatedAt.IsZero() || !r.CompletedAt.IsZero() || !r.LeaseExpiresAt.Equal(c.LeaseExpiresAt) {
		t.Fatalf("record = %+v", r)
	}
	_, err = f.Store.Inspect(ctx, key("missing"))
	wantErr(t, err, idempotency.ErrNotFound, nil)
}

func testDuplicateDuringLease(t *testing.T, f Fixture) {
	mustAcquire(t, f.Store, key("e1"), hashA)
	for _, h := range [][]byte{hashA, nil} {
		_, err := f.Store.Claim(context.Background(), key("e1"), h, lease)
		wantErr(t, err, idempotency.ErrInProgress, retry.ErrTransient)
		if !retry.IsTransient(err) {
			t.Fatalf("ErrInProgress classifies as %s", retry.Classify(err))
		}
	}
}

func testCompletedKeyReturnsResult(t *testing.T, f Fixture) {
	ctx := context.Background()
	c := mustAcquire(t, f.Store, key("e1"), hashA)
	if err := f.Store.Complete(ctx, c, []byte("payment-42")); err != nil {
		t.Fatal(err)
	}
	d := mustClaim(t, f.Store, key("e1"), hashA)
	if d.State != idempotency.ClaimDone || string(d.Result) != "payment-42" || d.Token != "" {
		t.Fatalf("duplicate claim = %+v, want done with the result", d)
	}
	r, err := f.Store.Inspect(ctx, key("e1"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != idempotency.StatusDone || string(r.Result) != "payment-42" || r.CompletedAt.IsZero() || !r.LeaseExpiresAt.IsZero() {
		t.Fatalf("record = %+v", r)
	}
	// A completed claim is spent.
	wantErr(t, f.Store.Complete(ctx, c, []byte("again")), idempotency.ErrLeaseLost, retry.ErrTransient)
	wantErr(t, f.Store.Release(ctx, c), idempotency.ErrLeaseLost, retry.ErrTransient)
	wantErr(t, f.Store.Complete(ctx, d, nil), idempotency.ErrLeaseLost, nil)

	// A nil result is stored as empty.
	c2 := mustAcquire(t, f.Store, key("e2"), nil)
	if err := f.Store.Complete(ctx, c2, nil); err != nil {
		t.Fatal(err)
	}
	if d := mustClaim(t, f.Store, key("e2"), nil); d.State != idempotency.ClaimDone || len(d.Result) != 0 {
		t.Fatalf("claim = %+v", d)
	}
}

func testPayloadMismatch(t *testing.T, f Fixture) {
	ctx := context.Background()
	c := mustAcquire(t, f.Store, key("e1"), hashA)
	_, err := f.Store.Claim(ctx, key("e1"), hashB, lease)
	wantErr(t, err, idempotency.ErrPayloadMismatch, retry.ErrPermanent)
	if err := f.Store.Complete(ctx, c, []byte("r")); err != nil {
		t.Fatal(err)
	}
	_, err = f.Store.Claim(ctx, key("e1"), hashB, lease)
	wantErr(t, err, idempotency.ErrPayloadMismatch, retry.ErrPermanent)
	if !retry.IsPermanent(err) {
		t.Fatalf("mismatch classifies as %s", retry.Classify(err))
	}
	// A nil hash on either side skips the check.
	if d := mustClaim(t, f.Store, key("e1"), nil); d.State != idempotency.ClaimDone {
		t.Fatalf("claim without hash = %+v", d)
	}
	c3 := mustAcquire(t, f.Store, key("e3"), nil)
	if err := f.Store.Complete(ctx, c3, nil); err != nil {
		t.Fatal(err)
	}
	if d := mustClaim(t, f.Store, key("e3"), hashB); d.State != idempotency.ClaimDone {
		t.Fatalf("claim of a record without hash = %+v", d)
	}
	// A mismatching payload cannot take over an expired lease either.
	mustAcquire(t, f.Store, key("e4"), hashA)
	f.ExpireLeases(t)
	_, err = f.Store.Claim(ctx, key("e4"), hashB, lease)
	wantErr(t, err, idempotency.ErrPayloadMismatch, retry.ErrPermanent)
}

func testReleaseFreesClaim(t *testing.T, f Fixture) {
	ctx := context.Background()
	c := mustAcquire(t, f.Store, key("e1"), hashA)
	if err := f.Store.Release(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Store.Inspect(ctx, key("e1")); !errors.Is(err, idempotency.ErrNotFound) {
		t.Fatalf("Inspect after Release: %v, want ErrNotFound", err)
	}
	wantErr(t, f.Store.Release(ctx, c), idempotency.ErrLeaseLost, nil)
	wantErr(t, f.Store.Complete(ctx, c, nil), idempotency.ErrLeaseLost, nil)
	// The redelivery claims at once, even with another payload: the
	// released attempt recorded nothing.
	c2 := mustAcquire(t, f.Store, key("e1"), hashB)
	if c2.Token == c.Token || c2.Attempt != 1 {
		t.Fatalf("second claim = %+v, first = %+v", c2, c)
	}
}

// claimAll claims k from Concurrency goroutines released at once and
// returns the acquired claims and the other outcomes.
func claimAll(t *testing.T, s idempotency.LeaseStore, k idempotency.Key) (acquired, done []idempotency.Claim, inProgress int) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		start = make(chan struct{})
		errs  []error
	)
	for range Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := s.Claim(context.Background(), k, hashA, lease)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, idempotency.ErrInProgress):
				inProgress++
			case err != nil:
				errs = append(errs, err)
			case c.State == idempotency.ClaimAcquired:
				acquired = append(acquired, c)
			default:
				done = append(done, c)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d claims failed, first: %v", len(errs), errs[0])
	}
	return acquired, done, inProgress
}

func testConcurrentClaimsAcquireOnce(t *testing.T, f Fixture) {
	ctx := context.Background()
	var effects atomic.Int32
	acquired, done, inProgress := claimAll(t, f.Store, key("e1"))
	if len(acquired) != 1 || len(done) != 0 || inProgress != Concurrency-1 {
		t.Fatalf("acquired %d, done %d, in progress %d; want 1, 0, %d", len(acquired), len(done), inProgress, Concurrency-1)
	}
	effects.Add(1) // the winner's side effect
	if err := f.Store.Complete(ctx, acquired[0], []byte("ok")); err != nil {
		t.Fatal(err)
	}
	acquired, done, inProgress = claimAll(t, f.Store, key("e1"))
	for _, d := range done {
		if string(d.Result) != "ok" {
			t.Fatalf("duplicate result = %q", d.Result)
		}
	}
	if len(acquired) != 0 || len(done) != Concurrency || inProgress != 0 {
		t.Fatalf("after completion: acquired %d, done %d, in progress %d", len(acquired), len(done), inProgress)
	}
	if n := effects.Load(); n != 1 {
		t.Fatalf("effects = %d", n)
	}
}

func testExpiredLeaseTakenOverOnce(t *testing.T, f Fixture) {
	ctx := context.Background()
	stale := mustAcquire(t, f.Store, key("e1"), hashA)
	f.ExpireLeases(t)
	acquired, done, inProgress := claimAll(t, f.Store, key("e1"))
	if len(acquired) != 1 || len(done) != 0 || inProgress != Concurrency-1 {
		t.Fatalf("acquired %d, done %d, in progress %d; want exactly one takeover", len(acquired), len(done), inProgress)
	}
	owner := acquired[0]
	if owner.Attempt != 2 || owner.Token == stale.Token {
		t.Fatalf("takeover claim = %+v, stale = %+v", owner, stale)
	}
	// The stale holder can neither complete nor release the new owner's claim.
	wantErr(t, f.Store.Complete(ctx, stale, []byte("stale")), idempotency.ErrLeaseLost, retry.ErrTransient)
	wantErr(t, f.Store.Release(ctx, stale), idempotency.ErrLeaseLost, retry.ErrTransient)
	if r, err := f.Store.Inspect(ctx, key("e1")); err != nil || r.Status != idempotency.StatusInProgress || r.Attempts != 2 {
		t.Fatalf("record after stale calls = %+v, %v", r, err)
	}
	if err := f.Store.Complete(ctx, owner, []byte("fresh")); err != nil {
		t.Fatal(err)
	}
	if d := mustClaim(t, f.Store, key("e1"), hashA); d.State != idempotency.ClaimDone || string(d.Result) != "fresh" {
		t.Fatalf("claim after takeover completed = %+v", d)
	}
}

func testCompleteAfterExpiryWithoutTakeover(t *testing.T, f Fixture) {
	ctx := context.Background()
	c := mustAcquire(t, f.Store, key("e1"), hashA)
	f.ExpireLeases(t)
	if err := f.Store.Complete(ctx, c, []byte("late")); err != nil {
		t.Fatalf("Complete of an expired but untaken lease: %v", err)
	}
	if d := mustClaim(t, f.Store, key("e1"), hashA); d.State != idempotency.ClaimDone || string(d.Result) != "late" {
		t.Fatalf("claim = %+v", d)
	}
	// And Release of an expired, untaken lease frees it.
	c2 := mustAcquire(t, f.Store, key("e2"), hashA)
	f.ExpireLeases(t)
	if err := f.Store.Release(ctx, c2); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, f.Store, key("e2"), hashA)
}

func testKeysArePerConsumer(t *testing.T, f Fixture) {
	a := idempotency.KeyFor("payment", "//orders", "e1")
	b := idempotency.KeyFor("analytics", "//orders", "e1")
	c := idempotency.KeyFor("payment", "//orders/other", "e1")
	for _, k := range []idempotency.Key{a, b, c} {
		mustAcquire(t, f.Store, k, hashA)
	}
}

func testPurge(t *testing.T, f Fixture) {
	ctx := context.Background()
	for i := range 3 {
		c := mustAcquire(t, f.Store, key(fmt.Sprint("done", i)), hashA)
		if err := f.Store.Complete(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	live, err := f.Store.Claim(ctx, key("live"), hashA, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, f.Store, key("abandoned"), hashA) // lease of a minute

	if n, err := f.Store.Purge(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("Purge(an hour ago) = %d, %v; want nothing purged", n, err)
	}
	n, err := f.Store.Purge(ctx, time.Now().Add(time.Hour))
	if err != nil || n != 4 {
		t.Fatalf("Purge(in an hour) = %d, %v; want the 3 completed and the abandoned record", n, err)
	}
	for _, id := range []string{"done0", "done1", "done2", "abandoned"} {
		if _, err := f.Store.Inspect(ctx, key(id)); !errors.Is(err, idempotency.ErrNotFound) {
			t.Fatalf("Inspect(%s) after purge: %v", id, err)
		}
	}
	if r, err := f.Store.Inspect(ctx, key("live")); err != nil || r.Status != idempotency.StatusInProgress {
		t.Fatalf("live lease after purge: %+v, %v", r, err)
	}
	if err := f.Store.Complete(ctx, live, nil); err != nil {
		t.Fatal(err)
	}
	// A purged key is new again.
	mustAcquire(t, f.Store, key("done0"), hashB)
}

func testInvalidArguments(t *testing.T, f Fixture) {
	ctx := context.Background()
	for _, k := range []idempotency.Key{{}, {Consumer: "payment"}, {ID: "x"}, {Consumer: "p", ID: "a\x00b"}, {Consumer: "p", ID: "\xff"}} {
		_, err := f.Store.Claim(ctx, k, hashA, lease)
		wantErr(t, err, idempotency.ErrInvalidKey, retry.ErrPermanent)
	}
	for _, d := range []time.Duration{0, -time.Second} {
		_, err := f.Store.Claim(ctx, key("e1"), hashA, d)
		wantErr(t, err, idempotency.ErrInvalidLease, retry.ErrPermanent)
	}
	if _, err := f.Store.Inspect(ctx, key("e1")); !errors.Is(err, idempotency.ErrNotFound) {
		t.Fatalf("an invalid claim left a record: %v", err)
	}
}

func testExtend(t *testing.T, f Fixture) {
	ctx := context.Background()
	k := key("extend")
	c := mustAcquire(t, f.Store, k, nil)
	if err := f.Store.Extend(ctx, c, lease); err != nil {
		t.Fatalf("extend a held claim: %v", err)
	}
	// A duplicate still finds the key in progress.
	if _, err := f.Store.Claim(ctx, k, nil, lease); !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("claim during an extended lease: %v", err)
	}
	// Once the lease expired and another delivery took the key over, the
	// first holder can no longer extend it; the new holder can.
	f.ExpireLeases(t)
	c2 := mustAcquire(t, f.Store, k, nil)
	wantErr(t, f.Store.Extend(ctx, c, lease), idempotency.ErrLeaseLost, nil)
	if err := f.Store.Extend(ctx, c2, lease); err != nil {
		t.Fatalf("extend the new holder's claim: %v", err)
	}
	if err := f.Store.Complete(ctx, c2, nil); err != nil {
		t.Fatal(err)
	}
	wantErr(t, f.Store.Extend(ctx, c2, lease), idempotency.ErrLeaseLost, nil)
	wantErr(t, f.Store.Extend(ctx, idempotency.Claim{Key: k, State: idempotency.ClaimAcquired, Token: "forged"}, lease), idempotency.ErrLeaseLost, nil)
}
