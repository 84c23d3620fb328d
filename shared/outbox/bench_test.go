package outbox_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
)

// The relay benchmark drains a backlog of benchEvents events over benchKeys
// ordering keys (300-byte payloads, ordering on) from one throwaway
// PostgreSQL (fsync on) to pstest, and in the same run publishes the same
// messages with the Pub/Sub client alone (the ceiling):
//
//	go test -run '^$' -bench RelayDrain -benchtime 5x ./outbox/
//
// Each iteration writes the backlog (not timed), publishes it both ways and
// fails unless every event reached pstest exactly once and in order per
// key, for both. The metrics are medians over the iterations.
// BENCH_BATCH and BENCH_INFLIGHT override Config.BatchSize and
// MaxInFlight, for tuning. docs/benchmarks.md records results.
const (
	benchEvents = 20_000
	benchKeys   = 1_000
)

func benchMessages() []outbox.Entry {
	payload := make([]byte, 300)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	entries := make([]outbox.Entry, benchEvents)
	for i := range entries {
		key := fmt.Sprintf("order-%04d", i%benchKeys)
		entries[i] = outbox.Entry{Message: messaging.Message{
			Data:        payload,
			Attributes:  map[string]string{"seq": strconv.Itoa(i / benchKeys), "key": key},
			OrderingKey: key,
		}}
	}
	return entries
}

// checkExactlyOnceInOrder reads what pstest received on topic and fails b
// unless each key got seq 0..n-1 once, in order.
func checkExactlyOnceInOrder(b *testing.B, ps *pubsubtest.Fake, topic string) {
	b.Helper()
	perKey := map[string][]int{}
	n := 0
	for _, m := range ps.Server.Messages() {
		if m.Topic != pubsubtest.TopicName(topic) {
			continue
		}
		seq, err := strconv.Atoi(m.Attributes["seq"])
		if err != nil || m.Attributes["key"] != m.OrderingKey {
			b.Fatalf("message %s: attributes %v, ordering key %q", m.ID, m.Attributes, m.OrderingKey)
		}
		perKey[m.OrderingKey] = append(perKey[m.OrderingKey], seq)
		n++
	}
	if n != benchEvents || len(perKey) != benchKeys {
		b.Fatalf("topic %s: %d messages over %d keys, want %d over %d", topic, n, len(perKey), benchEvents, benchKeys)
	}
	per := benchEvents / benchKeys
	for k, got := range perKey {
		for i, s := range got {
			if s != i || len(got) != per {
				b.Fatalf("topic %s key %s: got seqs %v, want 0..%d once each in order", topic, k, got, per-1)
			}
		}
	}
}

func BenchmarkRelayDrain(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.NewPool(b)
	if err := outbox.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	ps := pubsubtest.New(b)
	msgs := benchMessages()
	var relayRates, clientRates, ratios []float64
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		rawTopic, relayTopic := fmt.Sprintf("raw-%d", i), fmt.Sprintf("relay-%d", i)
		ps.CreateTopic(b, rawTopic)
		ps.CreateTopic(b, relayTopic)

		// The ceiling: the client alone, ordering on, every result awaited.
		pub := ps.Client.Publisher(rawTopic)
		pub.EnableMessageOrdering = true
		start := time.Now()
		results := make([]*pubsub.PublishResult, len(msgs))
		for j, e := range msgs {
			results[j] = pub.Publish(ctx, &pubsub.Message{Data: e.Message.Data, Attributes: e.Message.Attributes, OrderingKey: e.Message.OrderingKey})
		}
		for _, r := range results {
			if _, err := r.Get(ctx); err != nil {
				b.Fatal(err)
			}
		}
		clientRate := benchEvents / time.Since(start).Seconds()
		clientRates = append(clientRates, clientRate)
		pub.Stop()
		checkExactlyOnceInOrder(b, ps, rawTopic)

		// The backlog, written in transactions of 500 rows.
		for j := 0; j < len(msgs); j += 500 {
			batch := msgs[j : j+500]
			for k := range batch {
				batch[k].Topic = relayTopic
			}
			if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				_, err := outbox.WriteMany(ctx, tx, batch)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE outbox`); err != nil {
			b.Fatal(err)
		}
		mp := messaging.NewPubSub(ps.Client)
		cfg := outbox.Config{Pool: pool, Publisher: mp, Logger: quiet}
		if v, _ := strconv.Atoi(os.Getenv("BENCH_BATCH")); v > 0 {
			cfg.BatchSize = v
		}
		if v, _ := strconv.Atoi(os.Getenv("BENCH_INFLIGHT")); v > 0 {
			cfg.MaxInFlight = v
		}
		relay, err := outbox.NewRelay(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start = time.Now()
		st, err := relay.Drain(ctx)
		elapsed := time.Since(start)
		b.StopTimer()
		mp.Stop()
		if err != nil || st.Published != benchEvents || st.Failed != 0 {
			b.Fatalf("drain: %+v, %v", st, err)
		}
		relayRate := benchEvents / elapsed.Seconds()
		relayRates = append(relayRates, relayRate)
		ratios = append(ratios, relayRate/clientRate)
		checkExactlyOnceInOrder(b, ps, relayTopic)
		var pending int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil || pending != 0 {
			b.Fatalf("%d rows still pending (%v)", pending, err)
		}
		b.StartTimer()
	}
	// Medians over the iterations (-benchtime Nx): the two rates of one
	// iteration are measured one after the other, so on a shared machine
	// a single pair can be skewed by a burst of load.
	b.ReportMetric(median(relayRates), "relay-events/s")
	b.ReportMetric(median(clientRates), "client-events/s")
	b.ReportMetric(median(ratios), "relay/client")
	b.ReportMetric(0, "ns/op")
	for i := range ratios {
		b.Logf("run %d: relay %.0f events/s, client alone %.0f events/s: %.2fx", i+1, relayRates[i], clientRates[i], ratios[i])
	}
	b.Logf("median relay/client %.2fx (target >= 0.4)", median(ratios))
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
