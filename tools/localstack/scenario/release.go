package scenario

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"example.com/platform/shared/parking"
	"example.com/platform/tools/ops/cli"
)

// Release drives the batch's parked keys the way an operator would: it
// waits until payment parked the parked order's key (its order.created
// was dead-lettered), cancels the order through the API, waits until the
// order.cancelled event is parked behind the dead letter, lifts the
// gateway's refusal and replays the dead letter (eventctl parked replay);
// then it waits until the poison message's key is parked and discards it
// with a reason (eventctl parked discard). Settle then waits for the
// replay to be applied. Items not sent are skipped.
func (r *Runner) Release(ctx context.Context, b *Batch) error {
	if p := b.Parked(); p.Sent && p.OrderID != "" {
		if err := r.WaitParked(ctx, p.OrderID, 0); err != nil {
			return err
		}
		if err := r.Cancel(ctx, p.OrderID, "demo: the customer changed their mind"); err != nil {
			return err
		}
		if err := r.WaitParked(ctx, p.OrderID, 1); err != nil {
			return err
		}
		if err := r.Gateway(ctx, http.MethodDelete, "/_fake/behavior?scope=customer&id="+b.RefusedCustomer, nil, nil); err != nil {
			return err
		}
		if _, err := r.Eventctl(ctx, "parked", "replay", PoisonSubscription, p.OrderID); err != nil {
			return err
		}
		fmt.Fprintf(r.cfg.Log, "replayed the dead letter of order %s; its parked cancel follows\n", p.OrderID)
	}
	if p := b.Poison(); p.Sent {
		if err := r.WaitParked(ctx, p.OrderID, 0); err != nil {
			return err
		}
		if _, err := r.Eventctl(ctx, "parked", "discard", PoisonSubscription, p.OrderID, "--reason", "demo: an order the API never accepted"); err != nil {
			return err
		}
		fmt.Fprintf(r.cfg.Log, "discarded the poison message's parked key %s\n", p.OrderID)
	}
	return nil
}

// WaitParked polls, bounded by ctx, until payment's key orderID on
// order.created is parked with at least events parked behind its head.
func (r *Runner) WaitParked(ctx context.Context, orderID string, events int) error {
	store := parking.New(r.db)
	key := parking.Key{Subscription: PoisonSubscription, OrderingKey: orderID}
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	for {
		h, _, err := store.Get(ctx, key)
		if err == nil && h.Parked >= events {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait until %s is parked with %d events behind its head: %w (last: %+v, %v)", key, events, ctx.Err(), h, err)
		case <-tick.C:
		}
	}
}

// Cancel cancels an order through the orders API
// (POST /v1/orders/{id}:cancel), retrying 5xx answers and connection
// errors a few times (the call is idempotent).
func (r *Runner) Cancel(ctx context.Context, orderID, reason string) error {
	body := fmt.Sprintf(`{"reason":%q}`, reason)
	var last error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond): // client retry backoff
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Stack.URL(OrdersAPI)+"/v1/orders/"+orderID+":cancel", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := r.cfg.HTTPClient.Do(req)
		if err != nil {
			last = fmt.Errorf("cancel order %s: %w", orderID, err)
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 500:
			last = fmt.Errorf("cancel order %s: %s: %s", orderID, resp.Status, bytes.TrimSpace(b))
			continue
		case resp.StatusCode/100 != 2:
			return fmt.Errorf("cancel order %s: %s: %s", orderID, resp.Status, bytes.TrimSpace(b))
		}
		fmt.Fprintf(r.cfg.Log, "cancelled order %s\n", orderID)
		return nil
	}
	return last
}

// Eventctl runs the operator CLI in process against the stack, with the
// environment a client of the stack gets (stack.Env), and returns its
// standard output. A non-zero exit is an error carrying both outputs.
func (r *Runner) Eventctl(ctx context.Context, args ...string) (string, error) {
	env := map[string]string{"EVENTCTL_USER": "demo"}
	for _, kv := range r.Stack.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var stdout, stderr bytes.Buffer
	c := &cli.Command{Stdout: &stdout, Stderr: &stderr, Stdin: strings.NewReader(""),
		Getenv: func(k string) string { return env[k] }, Interactive: func() bool { return false }}
	if code := c.Run(ctx, args); code != cli.ExitOK {
		return stdout.String(), fmt.Errorf("eventctl %s: exit %d: %s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}
