// Command eventctl is the operator CLI of the event platform: list, show
// and replay dead letters, inspect and purge idempotency records, show and
// flush the outbox. It works against the local stack and Google Cloud
// alike; see README.md beside this file. The logic lives in
// example.com/platform/tools/ops/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"example.com/platform/tools/ops/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.MainContext(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
