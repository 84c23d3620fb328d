// Package idempotencybench holds the bodies of the idempotency benchmarks,
// so that `go test -bench` (shared/idempotency/bench_test.go) and the
// benchmark suite (`make bench`, tools/cmd/bench) measure the same code.
//
// Each measure runs one operation from exactly Conc goroutines (explicit
// workers, each with its own pooled connection) and counts every event; an
// operation that fails, or whose outcome is not the one expected (a first
// delivery that is not processed, a duplicate that is not recognised),
// stops the run with an error.
package idempotencybench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/idempotency"
)

// Payload is the event body hashed for every event (as a handler would).
var Payload = []byte(`{"order_id":"7f1c2a9e-3b4d-4c5e-8f60-1a2b3c4d5e6f","amount":{"minor":12999,"currency":"EUR"},"items":[{"sku":"SKU-1","qty":2}]}`)

// Env is a database prepared for the benchmarks: the idempotency tables,
// a business table effects and the baseline's raw_events.
type Env struct {
	Pool  *pgxpool.Pool
	Store *idempotency.Store
	seq   atomic.Int64 // distinct event ids across runs
	dup   bool
}

// Setup migrates pool's database (idempotency.Migrate) and creates the
// tables effects and raw_events. The database should be empty.
func Setup(ctx context.Context, pool *pgxpool.Pool) (*Env, error) {
	if err := idempotency.Migrate(ctx, pool); err != nil {
		return nil, err
	}
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS effects (id bigserial PRIMARY KEY, event text NOT NULL, by text NOT NULL DEFAULT '')`,
		`CREATE TABLE IF NOT EXISTS raw_events (id bigserial PRIMARY KEY, event text NOT NULL, by text NOT NULL DEFAULT '')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return nil, err
		}
	}
	s, err := idempotency.New(pool, idempotency.Config{})
	if err != nil {
		return nil, err
	}
	return &Env{Pool: pool, Store: s}, nil
}

// Op is one event's work.
type Op func(ctx context.Context) error

// Run runs op from exactly conc goroutines until n events are done (n > 0)
// or, with n == 0, until d has passed, after a warm-up of 4 events per
// goroutine that is not counted (it opens the connections and prepares the
// statements). It returns the events done and the time they took.
func Run(ctx context.Context, conc int, n int64, d time.Duration, op Op) (int64, time.Duration, error) {
	if conc < 1 || (n <= 0 && d <= 0) {
		return 0, 0, errors.New("idempotencybench: need conc >= 1 and a count or a duration")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	fail := func(err error) {
		errMu.Lock()
		if first == nil {
			first = err
		}
		errMu.Unlock()
		cancel()
	}
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				if err := op(ctx); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, 0, first
	}
	var next, done atomic.Int64
	var stop atomic.Bool
	start := time.Now()
	if n <= 0 {
		t := time.AfterFunc(d, func() { stop.Store(true) })
		defer t.Stop()
	}
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if n > 0 && next.Add(1) > n {
					return
				}
				if err := op(ctx); err != nil {
					fail(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return done.Load(), elapsed, first
}

func (e *Env) nextID() string { return strconv.FormatInt(e.seq.Add(1), 10) }

// RawInsert is the baseline: one autocommit single-row INSERT of a
// distinct row per event (1 round trip, 1 commit), plus the payload hash
// the idempotent paths also compute.
func (e *Env) RawInsert() Op {
	return func(ctx context.Context) error {
		id := e.nextID()
		_ = idempotency.HashPayload(Payload)
		_, err := e.Pool.Exec(ctx, `INSERT INTO raw_events (event, by) VALUES ($1, $2)`, id, "bench")
		return err
	}
}

func handler(id string) idempotency.TxFunc {
	return func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO effects (event, by) VALUES ($1, $2)`, id, "bench")
		return err
	}
}

// TransactionalFirst is a first delivery through Store.Transactional: a
// distinct event whose handler inserts one business row in the claim's
// transaction. Any outcome but processed is an error.
func (e *Env) TransactionalFirst() Op {
	return func(ctx context.Context) error {
		id := e.nextID()
		out, err := e.Store.Transactional(ctx, idempotency.KeyFor("bench", "//bench", id), idempotency.HashPayload(Payload), handler(id))
		if err == nil && out != idempotency.OutcomeProcessed {
			err = fmt.Errorf("event %s: outcome %s, want processed", id, out)
		}
		return err
	}
}

var dupKey = idempotency.KeyFor("bench", "//bench", "duplicate")

// Duplicate redelivers one already processed event through
// Store.Transactional (it processes it once first). Any outcome but
// duplicate is an error, and so is a second business row.
func (e *Env) Duplicate(ctx context.Context) (Op, error) {
	if !e.dup {
		if _, err := e.Store.Transactional(ctx, dupKey, idempotency.HashPayload(Payload), handler("duplicate")); err != nil {
			return nil, err
		}
		e.dup = true
	}
	return func(ctx context.Context) error {
		out, err := e.Store.Transactional(ctx, dupKey, idempotency.HashPayload(Payload), handler("duplicate"))
		if err == nil && out != idempotency.OutcomeDuplicate {
			err = fmt.Errorf("outcome %s, want duplicate", out)
		}
		return err
	}, nil
}

// CheckEffects fails unless the duplicate event's business row exists
// exactly once and every first delivery wrote exactly one row.
func (e *Env) CheckEffects(ctx context.Context) error {
	var dups, multi int
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM effects WHERE event = 'duplicate'`).Scan(&dups); err != nil {
		return err
	}
	if e.dup && dups != 1 {
		return fmt.Errorf("the duplicate event has %d business rows, want 1", dups)
	}
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT event FROM effects GROUP BY event HAVING count(*) > 1) d`).Scan(&multi); err != nil {
		return err
	}
	if multi != 0 {
		return fmt.Errorf("%d events have more than one business row", multi)
	}
	return nil
}
