// Command dev starts the whole system locally (`make dev`): a Pub/Sub
// server, PostgreSQL, every function and the fake payment gateway as
// separate processes, and the push dispatcher between them. It prints the
// addresses to use, streams every process's log prefixed with its name,
// and stops everything on Ctrl-C. See docs/local-stack.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"example.com/platform/tools/localstack/stack"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		duplicate = fs.Bool("duplicate", false, "deliver every message twice, to show idempotency")
		scale     = fs.Float64("backoff-scale", 1, "multiply the manifests' retry backoff (e.g. 0.01 for a quick demo); 1 is the real values")
		only      = fs.String("functions", "", "comma-separated functions to start (default: every manifest)")
		port      = fs.Int("pubsub-port", 0, "Pub/Sub emulator port (0: a free port)")
		grace     = fs.Duration("grace", stack.DefaultGrace, "wait between SIGTERM and SIGKILL at shutdown")
		strict    = fs.Bool("strict", false, "fail when a function has no cmd/ folder instead of skipping it")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *scale <= 0 {
		fmt.Fprintln(stderr, "dev: -backoff-scale must be positive")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := stack.Options{
		BackoffScale: *scale,
		Duplicate:    *duplicate,
		PubSubPort:   *port,
		Grace:        *grace,
		Log:          stderr,
		SkipMissing:  !*strict,
		// The relay's schedule, every few seconds instead of its cron's minute.
		ScheduleEvery: 5 * time.Second,
	}
	if *only != "" {
		opts.Functions = strings.Split(*only, ",")
	}
	start := time.Now()
	s, err := stack.Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "dev: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nLocal stack up in %s. Export these to talk to it:\n\n", time.Since(start).Round(100*time.Millisecond))
	for _, kv := range s.Env() {
		fmt.Fprintf(stdout, "  export %s\n", kv)
	}
	if len(s.SinkFiles) > 0 {
		fmt.Fprintln(stdout, "\nBigQuery rows (JSON lines, no emulator):")
		for name, path := range s.SinkFiles {
			fmt.Fprintf(stdout, "  %s: %s\n", name, path)
		}
	}
	for _, w := range s.Warnings() {
		fmt.Fprintf(stdout, "\nWARNING: %s\n", w)
	}
	fmt.Fprintln(stdout, "\nCtrl-C stops everything.")
	<-ctx.Done()
	fmt.Fprintln(stderr, "dev: stopping")
	if err := s.Stop(); err != nil {
		fmt.Fprintf(stderr, "dev: stop: %v\n", err)
		return 1
	}
	return 0
}
