package bench

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/idempotency/idempotencybench"
	"example.com/platform/shared/outbox/outboxbench"
)

// Concurrencies of the idempotency measures.
var concurrencies = []int{1, 16}

// idempotency measures, per repetition and concurrency and one right after
// the other (so that a burst of load on a shared machine skews a ratio's
// two rates alike): the raw INSERT, the transactional first delivery and
// the duplicate. The ratios are medians over the repetitions of each
// repetition's ratio.
func (r *runner) idempotency(ctx context.Context, dsn string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	env, err := idempotencybench.Setup(ctx, pool)
	if err != nil {
		return err
	}
	dup, err := env.Duplicate(ctx)
	if err != nil {
		return err
	}
	measure := func(conc int, op idempotencybench.Op, what string) (float64, error) {
		n, elapsed, err := idempotencybench.Run(ctx, conc, 0, r.cfg.Micro, op)
		if err != nil {
			return 0, fmt.Errorf("%w: %s at concurrency %d: %w", ErrVerify, what, conc, err)
		}
		return float64(n) / elapsed.Seconds(), nil
	}
	for rep := range r.cfg.Reps {
		for _, conc := range concurrencies {
			raw, err := measure(conc, env.RawInsert(), "raw insert")
			if err != nil {
				return err
			}
			first, err := measure(conc, env.TransactionalFirst(), "transactional first delivery")
			if err != nil {
				return err
			}
			d, err := measure(conc, dup, "duplicate delivery")
			if err != nil {
				return err
			}
			r.logf("idempotency rep %d conc %d: raw %.0f/s, first %.0f/s (%.2fx), duplicate %.0f/s (%.2fx first)",
				rep+1, conc, raw, first, first/raw, d, d/first)
			r.res.addIdem(conc, raw, first, d)
		}
	}
	if err := env.CheckEffects(ctx); err != nil {
		return fmt.Errorf("%w: idempotency: %w", ErrVerify, err)
	}
	return nil
}

// relay drains the 20,000-event backlog with the outbox relay and
// publishes it with the client alone, on the stack's pstest, Reps times.
func (r *runner) relay(ctx context.Context, dsn string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	env, err := outboxbench.Setup(ctx, pool, r.st.Server, r.st.Client)
	if err != nil {
		return err
	}
	// pstest keeps every message ever published; the stack has none yet
	// that anything still needs, so forget each round's 40,000.
	env.ClearServer = true
	for rep := range r.cfg.Reps {
		res, err := env.Round(ctx)
		if err != nil {
			return fmt.Errorf("%w: outbox relay: %w", ErrVerify, err)
		}
		r.logf("relay rep %d: relay %.0f events/s, client alone %.0f events/s: %.2fx", rep+1, res.Relay, res.Client, res.Ratio())
		r.res.Relay = append(r.res.Relay, res)
	}
	return nil
}
