// Command bench is `make bench`: the benchmark suite of tools/bench, in
// one process, on one PostgreSQL and one Pub/Sub server (pstest). It
// prints a table and a last line starting "bench: " with key=value
// results, and exits 1 when a verification fails (a lost, duplicated or
// misordered event, an order not shipped), 2 on a usage error. A missed
// target does not fail the run; the table says which. BENCH_QUICK=1 (or
// -quick) runs one short repetition of everything, for CI: its numbers
// mean nothing. See docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"example.com/platform/tools/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		quick    = fs.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "one short repetition of everything (default from BENCH_QUICK=1); numbers not meaningful")
		reps     = fs.Int("reps", 0, "repetitions of each micro-benchmark (default 3, quick 1)")
		phase    = fs.Duration("phase", 0, "duration of each steady-rate phase of the local stack (default 60s, quick 5s)")
		micro    = fs.Duration("micro", 0, "duration of each idempotency measure (default 2s, quick 200ms)")
		verbose  = fs.Bool("v", false, "stream every process's log of the local stack to stderr")
		quiet    = fs.Bool("q", false, "no progress lines on stderr")
		allCores = fs.Bool("all-cores", false, "run every function with this machine's GOMAXPROCS, not its manifest's resources.cpu")
		perfDir  = fs.String("perf", "", "record a perf CPU profile of every function during the end-to-end phase into this directory")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %v\n", fs.Args())
		return 2
	}
	cfg := bench.Config{Quick: *quick, Reps: *reps, Phase: *phase, Micro: *micro, Out: stdout, Log: stderr, PerfDir: *perfDir, AllCores: *allCores}
	if *quiet {
		cfg.Log = io.Discard
	}
	if *verbose {
		cfg.Stack = stderr
	}
	start := time.Now()
	_, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v (after %s)\n", err, time.Since(start).Round(time.Second))
		if errors.Is(err, context.Canceled) {
			return 130
		}
		return 1
	}
	return 0
}
