package idempotency_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/idempotency/idempotencytest"
)

// fakeClock is the in-memory store's clock; ExpireLeases moves it on.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestMemoryStoreConformance(t *testing.T) {
	idempotencytest.Run(t, func(t *testing.T) idempotencytest.Fixture {
		clock := &fakeClock{now: time.Now()}
		s, err := idempotency.NewMemoryStore(idempotency.Config{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return idempotencytest.Fixture{
			Store: s,
			// The suite's leases last a minute; other tests of a fixture
			// compare against the real clock, so stay within the hour.
			ExpireLeases: func(*testing.T) { clock.Advance(2 * time.Minute) },
		}
	})
}

func TestMemoryStorePurgeExpiredUsesRetention(t *testing.T) {
	ctx := t.Context()
	clock := &fakeClock{now: time.Now()}
	s, err := idempotency.NewMemoryStore(idempotency.Config{Now: clock.Now, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, idempotency.KeyFor("c", "s", "1"), nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	clock.Advance(23 * time.Hour)
	if n, err := s.PurgeExpired(ctx); err != nil || n != 0 {
		t.Fatalf("PurgeExpired within retention = %d, %v", n, err)
	}
	clock.Advance(2 * time.Hour)
	if n, err := s.PurgeExpired(ctx); err != nil || n != 1 {
		t.Fatalf("PurgeExpired after retention = %d, %v", n, err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  idempotency.Config
		want error
	}{
		{idempotency.Config{}, nil},
		{idempotency.Config{Retention: time.Hour, PurgeBatchSize: 10}, nil},
		{idempotency.Config{Retention: -1}, idempotency.ErrInvalidRetention},
		{idempotency.Config{PurgeBatchSize: -1}, idempotency.ErrInvalidBatchSize},
	} {
		err := tc.cfg.Validate()
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Validate(%+v) = %v, want %v", tc.cfg, err, tc.want)
		}
		if _, err := idempotency.NewMemoryStore(tc.cfg); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("NewMemoryStore(%+v) = %v, want %v", tc.cfg, err, tc.want)
		}
	}
}

func TestKeyFor(t *testing.T) {
	k := idempotency.KeyFor("payment", "//orders.example.com/orders", "0b4c")
	if k.Consumer != "payment" || k.ID != "//orders.example.com/orders/0b4c" {
		t.Fatalf("KeyFor = %+v", k)
	}
	if k.String() != "payment://orders.example.com/orders/0b4c" {
		t.Fatalf("String = %q", k.String())
	}
	if len(idempotency.HashPayload([]byte("x"))) != 32 {
		t.Fatal("HashPayload is not SHA-256 sized")
	}
}
