package idempotency_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"example.com/platform/shared/idempotency/idempotencybench"
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

var (
	benchMu    sync.Mutex
	benchRates = map[string]float64{} // b.Name() -> events/s of its last (largest) run
)

func benchEnv(b *testing.B) *idempotencybench.Env {
	b.Helper()
	env, err := idempotencybench.Setup(context.Background(), pgtest.NewPool(b))
	if err != nil {
		b.Fatal(err)
	}
	return env
}

// runConcurrent runs op b.N times from exactly conc goroutines
// (idempotencybench.Run, the code `make bench` runs too) and reports the
// throughput as events/s.
func runConcurrent(b *testing.B, conc int, op idempotencybench.Op) {
	b.Helper()
	b.ResetTimer()
	n, elapsed, err := idempotencybench.Run(context.Background(), conc, int64(b.N), 0, op)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	rate := float64(n) / elapsed.Seconds()
	b.ReportMetric(rate, "events/s")
	benchMu.Lock()
	benchRates[b.Name()] = rate
	benchMu.Unlock()
}

// BenchmarkRawInsert is the baseline: one single-row INSERT of a distinct
// row per event, committed on its own (autocommit), no idempotency.
func BenchmarkRawInsert(b *testing.B) {
	env := benchEnv(b)
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) { runConcurrent(b, conc, env.RawInsert()) })
	}
}

// BenchmarkTransactional measures transactional mode: "first" processes
// distinct events, each handler inserting one business row in the claim's
// transaction (Transactional with a TxFunc); "duplicate" redelivers one
// already processed event through Transactional.
func BenchmarkTransactional(b *testing.B) {
	env := benchEnv(b)
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("first/conc=%d", conc), func(b *testing.B) { runConcurrent(b, conc, env.TransactionalFirst()) })
	}
	dup, err := env.Duplicate(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("duplicate/conc=%d", conc), func(b *testing.B) { runConcurrent(b, conc, dup) })
	}
	if err := env.CheckEffects(context.Background()); err != nil {
		b.Fatal(err)
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
		b.ReportMetric(first/raw, fmt.Sprintf("tx/raw@conc=%d", conc))
		b.ReportMetric(dup/first, fmt.Sprintf("dup/first@conc=%d", conc))
		if b.N == 1 {
			b.Logf("conc=%d: raw %.0f events/s; transactional first %.0f (%.2fx raw, target >= 0.7); duplicate %.0f (%.2fx first, target >= 3)",
				conc, raw, first, first/raw, dup, dup/first)
		}
	}
	b.ReportMetric(0, "ns/op")
}
