// Command fakegateway serves the fake payment gateway
// (shared/domain/fakegateway) for the local stack: the payment function's
// PAYMENT_GATEWAY_URL points at it.
//
//	go run ./tools/cmd/fakegateway -addr :8090 -mode approve
//	go run ./tools/cmd/fakegateway -mode decline -decline-code insufficient_funds
//	go run ./tools/cmd/fakegateway -mode fail -status 503
//	go run ./tools/cmd/fakegateway -mode hang          # never answers
//	go run ./tools/cmd/fakegateway -delay 2s           # slow approvals
//
// It listens on -addr, else on :$PORT, else on :8090. The flags set the
// default behaviour; per-customer and per-order rules, counters and resets
// go through the control endpoints (PUT /_fake/behavior, GET /_fake/stats,
// GET /_fake/charges, GET /_fake/refunds, POST /_fake/reset) described in
// the package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"example.com/platform/shared/domain/fakegateway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := setup(os.Args[1:], os.Getenv, os.Stderr)
	if err == nil {
		err = p.serve(ctx)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "fakegateway:", err)
		os.Exit(1)
	}
}

// program is a configured, listening fake gateway.
type program struct {
	g      *fakegateway.Gateway
	srv    *http.Server
	l      net.Listener
	logger *slog.Logger
}

// setup parses args and starts listening (not serving yet).
func setup(args []string, getenv func(string) string, stderr io.Writer) (*program, error) {
	fs := flag.NewFlagSet("fakegateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "listen address (default :$PORT, else :8090)")
	mode := fs.String("mode", string(fakegateway.Approve), "default behaviour: approve, decline, fail, hang or approve_then_hang")
	code := fs.String("decline-code", fakegateway.DefaultDeclineCode, "decline code of -mode decline")
	declineStatus := fs.Int("decline-status", http.StatusPaymentRequired, "HTTP status of a decline: 402 or 200")
	status := fs.Int("status", http.StatusServiceUnavailable, "HTTP status of -mode fail")
	delay := fs.Duration("delay", 0, "answer every request after this delay (a slow gateway)")
	apiKey := fs.String("api-key", "", "require Authorization: Bearer <key> (default $PAYMENT_GATEWAY_API_KEY; empty accepts any)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if *addr == "" {
		*addr = ":8090"
		if p := getenv("PORT"); p != "" {
			*addr = ":" + p
		}
	}
	if *apiKey == "" {
		*apiKey = getenv("PAYMENT_GATEWAY_API_KEY")
	}
	b := fakegateway.Behavior{Mode: fakegateway.Mode(*mode), DeclineCode: *code, DeclineStatus: *declineStatus, Status: *status, Delay: *delay}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	g := fakegateway.New(fakegateway.Config{APIKey: *apiKey, Default: b})
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	logger.Info("fake payment gateway listening", "addr", l.Addr().String(), "mode", b.Mode, "delay", b.Delay.String(), "api_key_required", *apiKey != "")
	return &program{g: g, srv: &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}, l: l, logger: logger}, nil
}

// serve serves until ctx ends, then releases hanging requests and shuts
// down.
func (p *program) serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- p.srv.Serve(p.l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	p.g.Close() // release hanging requests so the shutdown does not wait for them
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.srv.Shutdown(sctx)
}
