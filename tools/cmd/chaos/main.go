// Command chaos is `make chaos`: it starts the local stack and drives
// orders through it while a seeded fault injector duplicates, fails and
// poisons pushes, gives the payment gateway bursts of 5xx and timeouts,
// slows and fails Pub/Sub publishes, restarts PostgreSQL, SIGKILLs every
// function process and takes the shipments table away for 10 s
// (tools/localstack/chaos). Its last line has the stable form
//
//	chaos: seed=… orders=10000 … faults=… lost=0 double_effects=0 order_violations=0 stuck=0 dead_lettered=… seconds=…
//
// and it exits 0 only when lost, double_effects, order_violations and
// stuck are all 0; 1 when one is not or the run failed; 2 on a usage
// error; 130 when interrupted. See docs/chaos.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"example.com/platform/tools/localstack/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		orders  = fs.Int("orders", chaos.DefaultOrders, "orders to send through the orders API")
		seed    = fs.Uint64("seed", 0, "seed of every random choice; 0 picks one (printed at start)")
		workers = fs.Int("workers", chaos.DefaultWorkers, "concurrent order senders")
		rate    = fs.Float64("rate", 0, "orders per second at most (0: as fast as the workers go)")
		scale   = fs.Float64("backoff-scale", chaos.DefaultBackoffScale, "multiply the manifests' retry backoff")
		timeout = fs.Duration("timeout", chaos.DefaultTimeout, "give up when the run (start included) takes longer")
		verbose = fs.Bool("v", false, "stream every process's log to stderr")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *orders < 1 || *workers < 1 || *rate < 0 || *scale <= 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "chaos: bad arguments: need -orders >= 1, -workers >= 1, -rate >= 0, positive -backoff-scale and -timeout, no positional arguments")
		return 2
	}
	if *seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		*seed = binary.LittleEndian.Uint64(b[:]) >> 1
	}
	fmt.Fprintf(stdout, "chaos: seed=%d (reproduce the fault plan with -seed %d, or make chaos CHAOS_SEED=%d)\n", *seed, *seed, *seed)
	logs := io.Discard
	if *verbose {
		logs = stderr
	}
	rep, err := chaos.Run(ctx, chaos.Config{Orders: *orders, Seed: *seed, Workers: *workers, Rate: *rate,
		BackoffScale: *scale, Timeout: *timeout, Log: logs, Progress: stdout})
	if err != nil {
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		fmt.Fprintf(stdout, "chaos: seed=%d orders=%d failed=1 error=%q\n", *seed, *orders, err.Error())
		if errors.Is(ctx.Err(), context.Canceled) {
			return 130
		}
		return 1
	}
	rep.WriteTable(stdout)
	if !rep.OK() {
		return 1
	}
	return 0
}
