package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/idempotency/idempotencytest"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/pgtest"
)

// setup migrates a fresh database and adds the effects table that test
// handlers write to in their transaction.
func setup(t testing.TB, pool *pgxpool.Pool, cfg idempotency.Config) *idempotency.Store {
	t.Helper()
	ctx := context.Background()
	if err := idempotency.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE effects (id bigserial PRIMARY KEY, event text NOT NULL, by text NOT NULL DEFAULT '')`); err != nil {
		t.Fatal(err)
	}
	s, err := idempotency.New(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newStore(t *testing.T) (*pgxpool.Pool, *idempotency.Store) {
	t.Helper()
	pool := pgtest.NewPool(t)
	return pool, setup(t, pool, idempotency.Config{})
}

func effects(t *testing.T, pool *pgxpool.Pool, event string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM effects WHERE event = $1`, event).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// effect is a handler whose business write is one effects row.
func effect(event, by string) idempotency.TxFunc {
	return func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO effects (event, by) VALUES ($1, $2)`, event, by)
		return err
	}
}

func TestPostgresStoreConformance(t *testing.T) {
	idempotencytest.Run(t, func(t *testing.T) idempotencytest.Fixture {
		pool := pgtest.NewPool(t)
		// A tiny batch makes the suite's purge run several batches.
		s := setup(t, pool, idempotency.Config{PurgeBatchSize: 2})
		return idempotencytest.Fixture{
			Store: s,
			ExpireLeases: func(t *testing.T) {
				t.Helper()
				if _, err := pool.Exec(context.Background(),
					`UPDATE processed_events SET lease_expires_at = now() - interval '1 second' WHERE status = 'in_progress'`); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

func TestTransactionalProcessesOnceThenDuplicate(t *testing.T) {
	ctx := t.Context()
	pool, s := newStore(t)
	k := idempotency.KeyFor("payment", "//orders", "e1")
	hash := idempotency.HashPayload([]byte(`{"order":"o1"}`))

	out, err := s.Transactional(ctx, k, hash, effect("e1", "first"))
	if err != nil || out != idempotency.OutcomeProcessed {
		t.Fatalf("first delivery = %s, %v", out, err)
	}
	calls := 0
	out, err = s.Transactional(ctx, k, hash, func(context.Context, pgx.Tx) error { calls++; return nil })
	if err != nil || out != idempotency.OutcomeDuplicate || calls != 0 {
		t.Fatalf("redelivery = %s, %v, handler calls %d; want duplicate without calling", out, err, calls)
	}
	_, err = s.Transactional(ctx, k, idempotency.HashPayload([]byte(`{"order":"o2"}`)), func(context.Context, pgx.Tx) error { calls++; return nil })
	if !errors.Is(err, idempotency.ErrPayloadMismatch) || !retry.IsPermanent(err) || calls != 0 {
		t.Fatalf("tampered redelivery: %v (permanent %v), calls %d", err, retry.IsPermanent(err), calls)
	}
	if out, err := s.Transactional(ctx, k, nil, effect("e1", "nohash")); err != nil || out != idempotency.OutcomeDuplicate {
		t.Fatalf("redelivery without hash = %s, %v", out, err)
	}
	if n := effects(t, pool, "e1"); n != 1 {
		t.Fatalf("effects = %d, want 1", n)
	}
	r, err := s.Inspect(ctx, k)
	if err != nil || r.Status != idempotency.StatusDone || string(r.PayloadHash) != string(hash) || r.CompletedAt.IsZero() {
		t.Fatalf("record = %+v, %v", r, err)
	}
	// The same event for another consumer is processed for that consumer.
	if out, err := s.Transactional(ctx, idempotency.KeyFor("analytics", "//orders", "e1"), hash, effect("e1", "analytics")); err != nil || out != idempotency.OutcomeProcessed {
		t.Fatalf("other consumer = %s, %v", out, err)
	}
}

func TestTransactionalHandlerErrorLeavesNoClaim(t *testing.T) {
	ctx := t.Context()
	pool, s := newStore(t)
	k := idempotency.KeyFor("payment", "//orders", "e1")
	boom := retry.Permanent(errors.New("boom"))
	_, err := s.Transactional(ctx, k, nil, func(ctx context.Context, tx pgx.Tx) error {
		if err := effect("e1", "failed")(ctx, tx); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("error = %v, want the handler's error unchanged", err)
	}
	if _, err := s.Inspect(ctx, k); !errors.Is(err, idempotency.ErrNotFound) {
		t.Fatalf("claim left after a failed attempt: %v", err)
	}
	if n := effects(t, pool, "e1"); n != 0 {
		t.Fatalf("effects after a failed attempt = %d", n)
	}
	if out, err := s.Transactional(ctx, k, nil, effect("e1", "retry")); err != nil || out != idempotency.OutcomeProcessed {
		t.Fatalf("redelivery = %s, %v", out, err)
	}
	if n := effects(t, pool, "e1"); n != 1 {
		t.Fatalf("effects = %d", n)
	}
	if s := pool.Stat(); s.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired", s.AcquiredConns())
	}
}

func TestTransactionalPanicRollsBack(t *testing.T) {
	ctx := t.Context()
	pool, s := newStore(t)
	k := idempotency.KeyFor("payment", "//orders", "e1")
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		_, _ = s.Transactional(ctx, k, nil, func(ctx context.Context, tx pgx.Tx) error {
			if err := effect("e1", "panic")(ctx, tx); err != nil {
				return err
			}
			panic("handler bug")
		})
	}()
	if _, err := s.Inspect(ctx, k); !errors.Is(err, idempotency.ErrNotFound) {
		t.Fatalf("claim left after a panic: %v", err)
	}
	if n := effects(t, pool, "e1"); n != 0 {
		t.Fatalf("effects after a panic = %d", n)
	}
	if s := pool.Stat(); s.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired after a panic", s.AcquiredConns())
	}
}

// TestTransactionalConcurrentDeliveries delivers one event from many
// goroutines at once: the claim must let exactly one handler commit.
func TestTransactionalConcurrentDeliveries(t *testing.T) {
	ctx := t.Context()
	pool, s := newStore(t)
	k := idempotency.KeyFor("payment", "//orders", "e1")
	hash := idempotency.HashPayload([]byte("data"))
	const n = 64
	var (
		wg                     sync.WaitGroup
		start                  = make(chan struct{})
		processed, dups, calls atomic.Int32
		errs                   = make(chan error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out, err := s.Transactional(ctx, k, hash, func(ctx context.Context, tx pgx.Tx) error {
				calls.Add(1)
				return effect("e1", fmt.Sprint(i))(ctx, tx)
			})
			switch {
			case err != nil:
				errs <- err
			case out == idempotency.OutcomeProcessed:
				processed.Add(1)
			case out == idempotency.OutcomeDuplicate:
				dups.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("delivery failed: %v", err)
	}
	if processed.Load() != 1 || dups.Load() != n-1 || calls.Load() != 1 {
		t.Fatalf("processed %d, duplicates %d, handler calls %d; want 1, %d, 1", processed.Load(), dups.Load(), calls.Load(), n-1)
	}
	if got := effects(t, pool, "e1"); got != 1 {
		t.Fatalf("effects = %d, want 1", got)
	}
}

// waitForLockWaiter polls pg_stat_activity until a backend other than the
// caller's waits on a lock while running the claim: proof that a
// concurrent delivery is blocked on the first one's claim row.
func waitForLockWaiter(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := pool.QueryRow(context.Background(), `
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%idempotency_claim%'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
	}
	t.Fatal("no delivery ever waited on the claim")
}

// TestTransactionalConnectionKilled kills the first delivery's connection
// while its handler runs, with a second delivery waiting on the claim: the
// first attempt must leave no effect and no claim, and the waiter must then
// process the event itself, exactly once.
func TestTransactionalConnectionKilled(t *testing.T) {
	ctx := t.Context()
	pool, s := newStore(t)
	k := idempotency.KeyFor("payment", "//orders", "e1")
	pids := make(chan uint32, 1)
	killed := make(chan struct{})
	var once sync.Once
	kill := func() { once.Do(func() { close(killed) }) }
	t.Cleanup(kill) // runs before the pool closes, should the test fail early
	firstErr := make(chan error, 1)
	go func() {
		_, err := s.Transactional(ctx, k, nil, func(ctx context.Context, tx pgx.Tx) error {
			if err := effect("e1", "killed")(ctx, tx); err != nil {
				return err
			}
			pids <- tx.Conn().PgConn().PID()
			<-killed
			_, err := tx.Exec(ctx, `INSERT INTO effects (event, by) VALUES ('e1', 'after kill')`)
			return err
		})
		firstErr <- err
	}()
	pid := <-pids

	waiter := make(chan error, 1)
	go func() {
		out, err := s.Transactional(ctx, k, nil, effect("e1", "waiter"))
		if err == nil && out != idempotency.OutcomeProcessed {
			err = fmt.Errorf("waiter outcome %s, want processed", out)
		}
		waiter <- err
	}()
	waitForLockWaiter(t, pool)

	var ok bool
	if err := pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	kill()
	if err := <-firstErr; err == nil {
		t.Fatal("handler on a killed connection succeeded")
	}
	if err := <-waiter; err != nil {
		t.Fatalf("waiting delivery: %v", err)
	}
	var by []string
	rows, _ := pool.Query(ctx, `SELECT by FROM effects WHERE event = 'e1'`)
	by, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(by) != 1 || by[0] != "waiter" {
		t.Fatalf("effects by %v, want exactly the waiter's", by)
	}
	if out, err := s.Transactional(ctx, k, nil, effect("e1", "late")); err != nil || out != idempotency.OutcomeDuplicate {
		t.Fatalf("redelivery = %s, %v", out, err)
	}
}

// TestTransactionalContextCancelled cancels the delivery's context while
// its handler waits in a query: nothing may be left, and the redelivery
// processes the event once.
func TestTransactionalContextCancelled(t *testing.T) {
	pool, s := newStore(t)
	k := idempotency.KeyFor("payment", "//orders", "e1")
	ctx, cancel := context.WithCancel(t.Context())
	running := make(chan struct{})
	go func() {
		<-running
		cancel()
	}()
	_, err := s.Transactional(ctx, k, nil, func(ctx context.Context, tx pgx.Tx) error {
		if err := effect("e1", "cancelled")(ctx, tx); err != nil {
			return err
		}
		close(running)
		_, err := tx.Exec(ctx, `SELECT pg_sleep(60)`) // ends by cancellation
		return err
	})
	if err == nil {
		t.Fatal("cancelled handler succeeded")
	}
	if _, err := s.Inspect(t.Context(), k); !errors.Is(err, idempotency.ErrNotFound) {
		t.Fatalf("claim left after cancellation: %v", err)
	}
	if n := effects(t, pool, "e1"); n != 0 {
		t.Fatalf("effects after cancellation = %d", n)
	}
	if out, err := s.Transactional(t.Context(), k, nil, effect("e1", "retry")); err != nil || out != idempotency.OutcomeProcessed {
		t.Fatalf("redelivery = %s, %v", out, err)
	}
	if out, err := s.Transactional(t.Context(), k, nil, effect("e1", "again")); err != nil || out != idempotency.OutcomeDuplicate {
		t.Fatalf("second redelivery = %s, %v", out, err)
	}
	if n := effects(t, pool, "e1"); n != 1 {
		t.Fatalf("effects = %d, want 1", n)
	}
}

func TestTransactionalOnLeasedKeyIsInProgress(t *testing.T) {
	ctx := t.Context()
	_, s := newStore(t)
	k := idempotency.KeyFor("payment", "//orders", "e1")
	if _, err := s.Claim(ctx, k, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := s.Transactional(ctx, k, nil, func(context.Context, pgx.Tx) error { return nil })
	if !errors.Is(err, idempotency.ErrInProgress) || !retry.IsTransient(err) {
		t.Fatalf("error = %v, want transient ErrInProgress", err)
	}
}

// TestTransactionalKeysAreData feeds keys that would break naively quoted
// SQL: they must be stored verbatim.
func TestTransactionalKeysAreData(t *testing.T) {
	ctx := t.Context()
	_, s := newStore(t)
	for i, id := range []string{`'); DROP TABLE processed_events; --`, `\x00'`, "ünïcødé ✓", `$$ $1 ;BEGIN`} {
		k := idempotency.Key{Consumer: "c'" + fmt.Sprint(i), ID: id}
		if out, err := s.Transactional(ctx, k, []byte{0, '\'', 1}, func(context.Context, pgx.Tx) error { return nil }); err != nil || out != idempotency.OutcomeProcessed {
			t.Fatalf("key %q: %s, %v", id, out, err)
		}
		r, err := s.Inspect(ctx, k)
		if err != nil || r.Key != k || string(r.PayloadHash) != "\x00'\x01" {
			t.Fatalf("key %q: record %+v, %v", id, r, err)
		}
	}
}

// counting counts traced queries and the writes to the server's socket.
type counting struct {
	queries atomic.Int32
	writes  atomic.Int32
	mu      sync.Mutex
	sql     []string
}

func (c *counting) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	c.mu.Lock()
	c.sql = append(c.sql, d.SQL)
	c.mu.Unlock()
	return ctx
}

func (c *counting) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart counts a batch as one query: pgx sends it as one pipeline.
func (c *counting) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	c.queries.Add(1)
	c.mu.Lock()
	for _, q := range d.Batch.QueuedQueries {
		c.sql = append(c.sql, q.SQL)
	}
	c.mu.Unlock()
	return ctx
}

func (c *counting) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *counting) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func (c *counting) reset() {
	c.queries.Store(0)
	c.writes.Store(0)
	c.mu.Lock()
	c.sql = nil
	c.mu.Unlock()
}

type countingConn struct {
	net.Conn
	c *counting
}

func (cc countingConn) Write(b []byte) (int, error) {
	cc.c.writes.Add(1)
	return cc.Conn.Write(b)
}

// TestRoundTrips counts what each path sends to the server: queries and
// batches with a pgx tracer (pgx.QueryTracer, pgx.BatchTracer), and socket writes (each query is sent with one write and
// its answer awaited before the next, so writes = round trips).
func TestRoundTrips(t *testing.T) {
	ctx := t.Context()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cnt := &counting{}
	cfg.MaxConns = 1
	cfg.ConnConfig.Tracer = cnt
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, c: cnt}, nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := setup(t, pool, idempotency.Config{})
	handler := effect("e", "rt")
	// Warm up: prepare the handler's statement and the lease statements on the connection.
	k0 := idempotency.KeyFor("rt", "//warm", "0")
	if _, err := s.Transactional(ctx, k0, nil, handler); err != nil {
		t.Fatal(err)
	}
	c0, err := s.Claim(ctx, idempotency.KeyFor("rt", "//warm", "lease"), nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, c0, []byte("r")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, c0.Key, nil, time.Minute); err != nil {
		t.Fatal(err)
	}

	// idle waits until the connection is back in the pool (MaxConns is 1),
	// so nothing of an earlier call is counted with the next one.
	idle := func() {
		t.Helper()
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.Release()
	}
	check := func(name string, wantQueries int32, run func() error) {
		t.Helper()
		idle()
		cnt.reset()
		if err := run(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		idle()
		if q, w := cnt.queries.Load(), cnt.writes.Load(); q != wantQueries || w != wantQueries {
			t.Errorf("%s: %d queries, %d socket writes; want %d round trips (%q)", name, q, w, wantQueries, cnt.sql)
		}
	}
	k := idempotency.KeyFor("rt", "//orders", "1")
	hash := idempotency.HashPayload([]byte("x"))
	check("first delivery", 3, func() error { // BEGIN+claim, the handler's insert, COMMIT
		out, err := s.Transactional(ctx, k, hash, handler)
		if out != idempotency.OutcomeProcessed {
			return fmt.Errorf("outcome %s, %w", out, err)
		}
		return err
	})
	// A duplicate: BEGIN+claim, then ROLLBACK of the empty transaction.
	check("duplicate delivery", 2, func() error {
		out, err := s.Transactional(ctx, k, hash, handler)
		if out != idempotency.OutcomeDuplicate {
			return fmt.Errorf("outcome %s, %w", out, err)
		}
		return err
	})
	check("tampered delivery", 2, func() error {
		_, err := s.Transactional(ctx, k, idempotency.HashPayload([]byte("y")), handler)
		if !errors.Is(err, idempotency.ErrPayloadMismatch) {
			return fmt.Errorf("error %v, want mismatch", err)
		}
		return nil
	})
	check("lease claim of a done key", 1, func() error {
		c, err := s.Claim(ctx, c0.Key, nil, time.Minute)
		if err == nil && c.State != idempotency.ClaimDone {
			err = fmt.Errorf("state %s", c.State)
		}
		return err
	})
	lk := idempotency.KeyFor("rt", "//orders", "lease")
	var lc idempotency.Claim
	check("lease claim of a new key", 1, func() (err error) {
		lc, err = s.Claim(ctx, lk, nil, time.Minute)
		return err
	})
	check("lease claim in progress", 1, func() error {
		_, err := s.Claim(ctx, lk, nil, time.Minute)
		if !errors.Is(err, idempotency.ErrInProgress) {
			return fmt.Errorf("error %v, want in progress", err)
		}
		return nil
	})
	check("complete", 1, func() error { return s.Complete(ctx, lc, nil) })
	if !strings.Contains(strings.Join(cnt.sql, ""), "UPDATE processed_events") {
		t.Errorf("complete sent %q", cnt.sql)
	}
}

// TestLeaseDeliveriesEffectOnce runs many deliveries of one event in lease
// mode, each retrying while another holds the lease, the first holder
// failing once: the side effect must happen exactly once.
func TestLeaseDeliveriesEffectOnce(t *testing.T) {
	ctx := t.Context()
	_, s := newStore(t)
	k := idempotency.KeyFor("payment", "//orders", "e1")
	hash := idempotency.HashPayload([]byte("data"))
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		charges atomic.Int32
		failed  atomic.Bool
		errs    = make(chan error, idempotencytest.Concurrency)
	)
	for range idempotencytest.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for attempt := 0; ; attempt++ {
				if attempt > 100000 {
					errs <- errors.New("never finished")
					return
				}
				c, err := s.Claim(ctx, k, hash, time.Minute)
				if errors.Is(err, idempotency.ErrInProgress) {
					continue // what a Pub/Sub redelivery would do, without the backoff
				}
				if err != nil {
					errs <- err
					return
				}
				if c.State == idempotency.ClaimDone {
					if string(c.Result) != "charged" {
						errs <- fmt.Errorf("result %q", c.Result)
					}
					return
				}
				if failed.CompareAndSwap(false, true) { // the first attempt fails before its effect
					if err := s.Release(ctx, c); err != nil {
						errs <- err
						return
					}
					continue
				}
				charges.Add(1)
				errs <- s.Complete(ctx, c, []byte("charged"))
				return
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := charges.Load(); n != 1 {
		t.Fatalf("charges = %d, want 1", n)
	}
}

// TestCompleteTxCommitsWithBusinessWrites completes a claim inside the
// caller's transaction: a rollback undoes the completion with the writes.
func TestCompleteTxCommitsWithBusinessWrites(t *testing.T) {
	ctx := t.Context()
	pool, s := newStore(t)
	k := idempotency.KeyFor("payment", "//orders", "e1")
	c, err := s.Claim(ctx, k, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, commit := range []bool{false, true} {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if err := effect("e1", "payment")(ctx, tx); err != nil {
				return err
			}
			if err := s.CompleteTx(ctx, tx, c, []byte("p1")); err != nil {
				return err
			}
			if !commit {
				return errors.New("rollback")
			}
			return nil
		})
		if commit != (err == nil) {
			t.Fatalf("commit=%v: %v", commit, err)
		}
		r, err := s.Inspect(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus, wantEffects := idempotency.StatusInProgress, 0
		if commit {
			wantStatus, wantEffects = idempotency.StatusDone, 1
		}
		if r.Status != wantStatus || effects(t, pool, "e1") != wantEffects {
			t.Fatalf("commit=%v: status %s, effects %d", commit, r.Status, effects(t, pool, "e1"))
		}
	}
	if d, err := s.Claim(ctx, k, nil, time.Minute); err != nil || d.State != idempotency.ClaimDone || string(d.Result) != "p1" {
		t.Fatalf("claim after CompleteTx = %+v, %v", d, err)
	}
}

func TestPurgeInBatchesAndRetention(t *testing.T) {
	ctx := t.Context()
	pool := pgtest.NewPool(t)
	s := setup(t, pool, idempotency.Config{PurgeBatchSize: 10, Retention: time.Hour})
	noop := func(context.Context, pgx.Tx) error { return nil }
	for i := range 25 {
		if _, err := s.Transactional(ctx, idempotency.KeyFor("c", "s", fmt.Sprint(i)), nil, noop); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PurgeExpired(ctx); err != nil || n != 0 {
		t.Fatalf("PurgeExpired of fresh records = %d, %v", n, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE processed_events SET completed_at = now() - interval '2 hours' WHERE event_key <> 's/0'`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeExpired(ctx); err != nil || n != 24 {
		t.Fatalf("PurgeExpired = %d, %v; want 24 over three batches", n, err)
	}
	if _, err := s.Inspect(ctx, idempotency.KeyFor("c", "s", "0")); err != nil {
		t.Fatalf("record within retention purged: %v", err)
	}
}

func TestMigrateAgainIsNoop(t *testing.T) {
	ctx := t.Context()
	pool, s := newStore(t)
	if _, err := s.Transactional(ctx, idempotency.KeyFor("c", "s", "1"), nil, func(context.Context, pgx.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := idempotency.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inspect(ctx, idempotency.KeyFor("c", "s", "1")); err != nil {
		t.Fatal(err)
	}
	if _, err := idempotency.New(pool, idempotency.Config{Retention: -time.Second}); !errors.Is(err, idempotency.ErrInvalidRetention) {
		t.Fatalf("New with negative retention: %v", err)
	}
}
