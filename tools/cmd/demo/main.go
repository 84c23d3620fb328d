// Command demo is `make demo`: it starts the local stack, sends a batch of
// orders through the orders API (one of them declined by the fake payment
// gateway) plus one poison message published straight to order.created,
// waits until the system is quiet, prints what happened and checks every
// invariant (tools/localstack/scenario). Its last line has the stable form
//
//	demo: orders=20 paid=17 declined=1 cancelled=1 shipped=17 analytics_rows=56 dead_lettered=2 parked=2 out_of_order=0 lost=0 duplicated_effects=0
//
// and it exits 0 only when every invariant holds, 1 when one is violated
// (they are listed above that line) or the run failed, 2 on a usage error,
// 130 when interrupted.
// Ctrl-C, a failure or the end of the run stops every process it started.
// See docs/demo.md.
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

	"example.com/platform/tools/localstack/scenario"
	"example.com/platform/tools/localstack/stack"
)

// Defaults of the flags.
const (
	defaultTimeout = 5 * time.Minute
	defaultScale   = 0.01
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the demo and returns the exit code. The report goes to
// stdout, errors to stderr; with -v every process's log goes to stderr and
// per-message progress to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		n         = fs.Int("n", scenario.DefaultOrders, fmt.Sprintf("messages to send, the poison message and the parked order included (at least %d)", scenario.MinOrders))
		duplicate = fs.Bool("duplicate", false, "deliver every message twice (idempotency)")
		timeout   = fs.Duration("timeout", defaultTimeout, "give up when the run (start included) takes longer")
		scale     = fs.Float64("backoff-scale", defaultScale, "multiply the manifests' retry backoff (1 is the real values)")
		verbose   = fs.Bool("v", false, "stream every process's log to stderr")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected arguments %v\n", fs.Args())
		return 2
	}
	if *n < scenario.MinOrders {
		fmt.Fprintf(stderr, "demo: -n must be at least %d (one approved order, one declined, one poison message, one parked order)\n", scenario.MinOrders)
		return 2
	}
	if *timeout <= 0 || *scale <= 0 {
		fmt.Fprintln(stderr, "demo: -timeout and -backoff-scale must be positive")
		return 2
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	logs := io.Discard
	if *verbose {
		logs = stderr
	}
	start := time.Now()
	fmt.Fprintln(stdout, "demo: starting the local stack (the first run builds every function)")
	s, err := stack.Start(ctx, stack.Options{
		BackoffScale:       *scale,
		Duplicate:          *duplicate,
		Log:                logs,
		NoBigQueryEmulator: true,
	})
	if err != nil {
		fmt.Fprintf(stderr, "demo: start the stack: %v\n", err)
		return failed(ctx)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			fmt.Fprintf(stderr, "demo: stop the stack: %v\n", err)
		}
	}()
	fmt.Fprintf(stdout, "demo: stack up in %s; sending %d messages (duplicate delivery %t)\n", time.Since(start).Round(100*time.Millisecond), *n, *duplicate)

	r, err := scenario.New(ctx, s, scenario.Config{Orders: *n, Log: progress(stdout, *verbose)})
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return failed(ctx)
	}
	defer r.Close()
	b := r.NewBatch()
	if err := r.Send(ctx, b); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return failed(ctx)
	}
	fmt.Fprintln(stdout, "demo: sent; waiting until the system is quiet")
	rep, err := r.Finish(ctx, b)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return failed(ctx)
	}
	fmt.Fprintf(stdout, "demo: done in %s\n", time.Since(start).Round(100*time.Millisecond))
	rep.WriteTable(stdout)
	if !rep.OK() {
		return failed(ctx)
	}
	return 0
}

// failed is the exit code of a failed run: 130 when it was interrupted
// (Ctrl-C, SIGTERM), else 1.
func failed(ctx context.Context) int {
	if errors.Is(ctx.Err(), context.Canceled) {
		return 130
	}
	return 1
}

// progress is where per-message progress lines go: stdout with -v,
// nowhere otherwise.
func progress(stdout io.Writer, verbose bool) io.Writer {
	if verbose {
		return stdout
	}
	return io.Discard
}
