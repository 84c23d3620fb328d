package outbox_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/outbox/outboxbench"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
)

// The relay benchmark drains a backlog of 20,000 events over 1,000
// ordering keys (300-byte payloads, ordering on) from one throwaway
// PostgreSQL (fsync on) to pstest, and in the same run publishes the same
// messages with the Pub/Sub client alone (the ceiling):
//
//	go test -run '^$' -bench RelayDrain -benchtime 5x ./outbox/
//
// Each iteration is one outboxbench.Round (the code `make bench` runs
// too): it writes the backlog (not timed), publishes it both ways and
// fails unless every event reached pstest exactly once and in order per
// key, for both. The metrics are medians over the iterations.
// BENCH_BATCH and BENCH_INFLIGHT override Config.BatchSize and
// MaxInFlight, for tuning. docs/benchmarks.md records results.
func BenchmarkRelayDrain(b *testing.B) {
	ctx := context.Background()
	ps := pubsubtest.New(b)
	env, err := outboxbench.Setup(ctx, pgtest.NewPool(b), ps.Server, ps.Client)
	if err != nil {
		b.Fatal(err)
	}
	env.BatchSize, _ = strconv.Atoi(os.Getenv("BENCH_BATCH"))
	env.MaxInFlight, _ = strconv.Atoi(os.Getenv("BENCH_INFLIGHT"))
	var relayRates, clientRates, ratios []float64
	for b.Loop() {
		res, err := env.Round(ctx)
		if err != nil {
			b.Fatal(err)
		}
		relayRates = append(relayRates, res.Relay)
		clientRates = append(clientRates, res.Client)
		ratios = append(ratios, res.Ratio())
	}
	// Medians over the iterations (-benchtime Nx): the two rates of one
	// iteration are measured one after the other, so on a shared machine
	// a single pair can be skewed by a burst of load.
	b.ReportMetric(outboxbench.Median(relayRates), "relay-events/s")
	b.ReportMetric(outboxbench.Median(clientRates), "client-events/s")
	b.ReportMetric(outboxbench.Median(ratios), "relay/client")
	b.ReportMetric(0, "ns/op")
	for i := range ratios {
		b.Logf("run %d: relay %.0f events/s, client alone %.0f events/s: %.2fx", i+1, relayRates[i], clientRates[i], ratios[i])
	}
	b.Logf("median relay/client %.2fx (target >= 0.4)", outboxbench.Median(ratios))
}

// BenchmarkPublishAfterCommitOne is what a handler does after each event:
// one outbox row written and committed, then published right away
// (Relay.PublishAfterCommit) to a recording publisher, against the write
// alone (the baseline, same run):
//
//	go test -run '^$' -bench PublishAfterCommitOne ./outbox/
//
// The difference is publish after commit's own database work per event.
func BenchmarkPublishAfterCommitOne(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.NewPool(b)
	if err := outbox.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	relay, err := outbox.NewRelay(outbox.Config{Pool: pool, Publisher: &messaging.Recorder{}})
	if err != nil {
		b.Fatal(err)
	}
	entry := func(i int) outbox.Entry {
		return outbox.Entry{Topic: "t", Message: messaging.Message{Data: []byte(`{"n":1}`), OrderingKey: "k" + strconv.Itoa(i%100)}}
	}
	b.Run("write", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := outbox.WriteMany(ctx, pool, []outbox.Entry{entry(i)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	if _, err := pool.Exec(ctx, `UPDATE outbox SET published_at = now()`); err != nil {
		b.Fatal(err)
	}
	b.Run("write+publish", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			ids, err := outbox.WriteMany(ctx, pool, []outbox.Entry{entry(i)})
			if err != nil {
				b.Fatal(err)
			}
			st, err := relay.PublishAfterCommit(ctx, ids...)
			if err != nil || st.Published != 1 {
				b.Fatalf("published %+v: %v", st, err)
			}
		}
	})
}
