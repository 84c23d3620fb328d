package idempotency_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/testing/pgtest"
)

// The benchmarks measure events per second on one throwaway PostgreSQL
// (fsync on), each top-level benchmark on a fresh database of that server:
//
//	go test -run '^$' -bench . -benchtime 2s ./idempotency/
//
// BenchmarkRatios, declared last so it runs last, reports the ratios the
// project targets from the rates measured before it in the same run.
// docs/benchmarks.md records results.

var benchConcurrency = []int{1, 16}

var benchPayload = []byte(`{"order_id":"7f1c2a9e-3b4d-4c5e-8f60-1a2b3c4d5e6f","amount":{"minor":12999,"currency":"EUR"},"items":[{"sku":"SKU-1","qty":2}]}`)

var (
	benchMu    sync.Mutex
	benchRates = map[string]float64{} // b.Name() -> events/s of its last (largest) run
	benchSeq   atomic.Int64           // distinct event ids across runs of a benchmark
)

func benchStore(b *testing.B) (*pgxpool.Pool, *idempotency.Store) {
	b.Helper()
	pool := pgtest.NewPool(b)
	s := setup(b, pool, idempotency.Config{})
	if _, err := pool.Exec(context.Background(), `CREATE TABLE raw_events (id bigserial PRIMARY KEY, event text NOT NULL, by text NOT NULL DEFAULT '')`); err != nil {
		b.Fatal(err)
	}
	return pool, s
}

// runConcurrent runs op b.N times from exactly conc goroutines and reports
// the throughput as events/s.
func runConcurrent(b *testing.B, conc int, op func(ctx context.Context) error) {
	b.Helper()
	ctx := context.Background()
	// Warm up outside the timer: open conc connections and prepare statements.
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				if err := op(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	var next atomic.Int64
	b.ResetTimer()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "events/s")
	benchMu.Lock()
	benchRates[b.Name()] = rate
	benchMu.Unlock()
}

// BenchmarkRawInsert is the baseline: one single-row INSERT of a distinct
// row per event, committed on its own (autocommit), no idempotency.
func BenchmarkRawInsert(b *testing.B) {
	pool, _ := benchStore(b)
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			runConcurrent(b, conc, func(ctx context.Context) error {
				id := strconv.FormatInt(benchSeq.Add(1), 10)
				_ = idempotency.HashPayload(benchPayload) // same per-event work as the handler below
				_, err := pool.Exec(ctx, `INSERT INTO raw_events (event, by) VALUES ($1, $2)`, id, "bench")
				return err
			})
		})
	}
}

// BenchmarkTransactional measures transactional mode: "first" processes
// distinct events, each handler inserting one business row in the claim's
// transaction (Transactional with a TxFunc); "first-batch" does the same
// with TransactionalBatch; "duplicate" redelivers one already processed
// event through Transactional.
func BenchmarkTransactional(b *testing.B) {
	_, s := benchStore(b)
	handler := func(id string) idempotency.TxFunc {
		return func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO effects (event, by) VALUES ($1, $2)`, id, "bench")
			return err
		}
	}
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("first/conc=%d", conc), func(b *testing.B) {
			runConcurrent(b, conc, func(ctx context.Context) error {
				id := strconv.FormatInt(benchSeq.Add(1), 10)
				out, err := s.Transactional(ctx, idempotency.KeyFor("bench", "//bench", id), idempotency.HashPayload(benchPayload), handler(id))
				if err == nil && out != idempotency.OutcomeProcessed {
					err = fmt.Errorf("event %s: outcome %s", id, out)
				}
				return err
			})
		})
	}
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("first-batch/conc=%d", conc), func(b *testing.B) {
			runConcurrent(b, conc, func(ctx context.Context) error {
				id := strconv.FormatInt(benchSeq.Add(1), 10)
				batch := &pgx.Batch{}
				batch.Queue(`INSERT INTO effects (event, by) VALUES ($1, $2)`, id, "bench")
				out, err := s.TransactionalBatch(ctx, idempotency.KeyFor("bench", "//bench", id), idempotency.HashPayload(benchPayload), batch)
				if err == nil && out != idempotency.OutcomeProcessed {
					err = fmt.Errorf("event %s: outcome %s", id, out)
				}
				return err
			})
		})
	}
	dup := idempotency.KeyFor("bench", "//bench", "duplicate")
	if _, err := s.Transactional(context.Background(), dup, idempotency.HashPayload(benchPayload), handler("duplicate")); err != nil {
		b.Fatal(err)
	}
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("duplicate/conc=%d", conc), func(b *testing.B) {
			runConcurrent(b, conc, func(ctx context.Context) error {
				out, err := s.Transactional(ctx, dup, idempotency.HashPayload(benchPayload), handler("duplicate"))
				if err == nil && out != idempotency.OutcomeDuplicate {
					err = fmt.Errorf("outcome %s, want duplicate", out)
				}
				return err
			})
		})
	}
}

// BenchmarkRatios reports, from the rates measured earlier in this run,
// transactional-first / raw-insert (target >= 0.7) and duplicate / first
// (target >= 3) per concurrency. Run it with the others: -bench .
func BenchmarkRatios(b *testing.B) {
	benchMu.Lock()
	defer benchMu.Unlock()
	for _, conc := range benchConcurrency {
		raw := benchRates[fmt.Sprintf("BenchmarkRawInsert/conc=%d", conc)]
		first := benchRates[fmt.Sprintf("BenchmarkTransactional/first/conc=%d", conc)]
		dup := benchRates[fmt.Sprintf("BenchmarkTransactional/duplicate/conc=%d", conc)]
		if raw == 0 || first == 0 || dup == 0 {
			b.Skip("ratios need BenchmarkRawInsert and BenchmarkTransactional in the same run: use -bench .")
		}
		batch := benchRates[fmt.Sprintf("BenchmarkTransactional/first-batch/conc=%d", conc)]
		b.ReportMetric(first/raw, fmt.Sprintf("tx/raw@conc=%d", conc))
		b.ReportMetric(dup/first, fmt.Sprintf("dup/first@conc=%d", conc))
		if batch > 0 {
			b.ReportMetric(batch/raw, fmt.Sprintf("batch/raw@conc=%d", conc))
		}
		if b.N == 1 {
			b.Logf("conc=%d: raw %.0f events/s; transactional first %.0f (%.2fx raw, target >= 0.7); batch first %.0f (%.2fx raw); duplicate %.0f (%.2fx first, target >= 3)",
				conc, raw, first, first/raw, batch, batch/raw, dup, dup/first)
		}
	}
	b.ReportMetric(0, "ns/op")
}
