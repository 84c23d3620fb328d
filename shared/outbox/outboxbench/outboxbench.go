// Package outboxbench holds the body of the outbox relay benchmark, so
// that `go test -bench RelayDrain` (shared/outbox/bench_test.go) and the
// benchmark suite (`make bench`, tools/cmd/bench) measure the same code.
//
// One Round writes a backlog of Events events over Keys ordering keys
// (300-byte payloads, ordering on, the keys interleaved as real traffic
// writes them) to the outbox, drains it with Relay.Drain to a Pub/Sub
// server, and publishes the same messages with the Pub/Sub client alone to
// the same server (the ceiling). It fails unless the server received every
// event exactly once and in order per key, both ways, and nothing is left
// pending.
package outboxbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
)

// The backlog of the issue: 20,000 events over 1,000 keys.
const (
	Events = 20_000
	Keys   = 1_000
)

// Messages returns the backlog: event i has key order-(i mod Keys) and
// attribute seq = i / Keys, its position within its key.
func Messages() []outbox.Entry {
	payload := make([]byte, 300)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	entries := make([]outbox.Entry, Events)
	for i := range entries {
		key := fmt.Sprintf("order-%04d", i%Keys)
		entries[i] = outbox.Entry{Message: messaging.Message{
			Data:        payload,
			Attributes:  map[string]string{"seq": strconv.Itoa(i / Keys), "key": key},
			OrderingKey: key,
		}}
	}
	return entries
}

// Env is what a Round needs: a database the outbox is migrated on, a
// pstest server and a v2 client of it.
type Env struct {
	Pool   *pgxpool.Pool
	Server *pstest.Server
	Client *pubsub.Client
	// BatchSize and MaxInFlight override the relay's defaults when > 0.
	BatchSize, MaxInFlight int
	// ClearServer, when set, clears the server's message log after each
	// check (pstest keeps every message ever published in memory).
	ClearServer bool
	msgs        []outbox.Entry
	round       int
}

// Setup migrates the outbox on pool's database.
func Setup(ctx context.Context, pool *pgxpool.Pool, srv *pstest.Server, client *pubsub.Client) (*Env, error) {
	if err := outbox.Migrate(ctx, pool); err != nil {
		return nil, err
	}
	return &Env{Pool: pool, Server: srv, Client: client, msgs: Messages()}, nil
}

// Result is one round.
type Result struct {
	Relay, Client float64 // events/s
}

// Ratio is relay / client.
func (r Result) Ratio() float64 { return r.Relay / r.Client }

// Round runs the client alone, writes the backlog (not timed), drains it
// with the relay, and checks both. Only the publishing is timed.
func (e *Env) Round(ctx context.Context) (Result, error) {
	e.round++
	project := e.Client.Project()
	rawTopic := fmt.Sprintf("bench-raw-%d-%d", time.Now().UnixNano(), e.round)
	relayTopic := fmt.Sprintf("bench-relay-%d-%d", time.Now().UnixNano(), e.round)
	for _, t := range []string{rawTopic, relayTopic} {
		if _, err := e.Client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicName(project, t)}); err != nil {
			return Result{}, fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	var res Result

	// The ceiling: the client alone, ordering on, every result awaited.
	pub := e.Client.Publisher(rawTopic)
	pub.EnableMessageOrdering = true
	start := time.Now()
	results := make([]*pubsub.PublishResult, len(e.msgs))
	for j, m := range e.msgs {
		results[j] = pub.Publish(ctx, &pubsub.Message{Data: m.Message.Data, Attributes: m.Message.Attributes, OrderingKey: m.Message.OrderingKey})
	}
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			pub.Stop()
			return res, fmt.Errorf("client publish: %w", err)
		}
	}
	res.Client = Events / time.Since(start).Seconds()
	pub.Stop()
	if err := e.check(topicName(project, rawTopic)); err != nil {
		return res, fmt.Errorf("client alone: %w", err)
	}

	// The backlog, written in transactions of 500 rows.
	for j := 0; j < len(e.msgs); j += 500 {
		batch := slices.Clone(e.msgs[j : j+500])
		for k := range batch {
			batch[k].Topic = relayTopic
		}
		if err := pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
			_, err := outbox.WriteMany(ctx, tx, batch)
			return err
		}); err != nil {
			return res, fmt.Errorf("write backlog: %w", err)
		}
	}
	if _, err := e.Pool.Exec(ctx, `VACUUM ANALYZE outbox`); err != nil {
		return res, err
	}
	mp := messaging.NewPubSub(e.Client)
	cfg := outbox.Config{Pool: e.Pool, Publisher: mp, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		BatchSize: e.BatchSize, MaxInFlight: e.MaxInFlight}
	relay, err := outbox.NewRelay(cfg)
	if err != nil {
		return res, err
	}
	start = time.Now()
	st, err := relay.Drain(ctx)
	elapsed := time.Since(start)
	mp.Stop()
	if err != nil || st.Published != Events || st.Failed != 0 {
		return res, fmt.Errorf("drain: %+v, %v", st, err)
	}
	res.Relay = Events / elapsed.Seconds()
	if err := e.check(topicName(project, relayTopic)); err != nil {
		return res, fmt.Errorf("relay: %w", err)
	}
	var pending int
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil || pending != 0 {
		return res, fmt.Errorf("%d outbox rows still pending (%v)", pending, err)
	}
	for _, t := range []string{rawTopic, relayTopic} {
		_ = e.Client.TopicAdminClient.DeleteTopic(ctx, &pubsubpb.DeleteTopicRequest{Topic: topicName(project, t)})
	}
	if e.ClearServer {
		e.Server.ClearMessages()
	}
	return res, nil
}

// check reads what the server received on topic and fails unless each key
// got seq 0..n-1 once, in order.
func (e *Env) check(topic string) error {
	perKey := map[string][]int{}
	n := 0
	for _, m := range e.Server.Messages() {
		if m.Topic != topic {
			continue
		}
		seq, err := strconv.Atoi(m.Attributes["seq"])
		if err != nil || m.Attributes["key"] != m.OrderingKey {
			return fmt.Errorf("message %s: attributes %v, ordering key %q", m.ID, m.Attributes, m.OrderingKey)
		}
		perKey[m.OrderingKey] = append(perKey[m.OrderingKey], seq)
		n++
	}
	if n != Events || len(perKey) != Keys {
		return fmt.Errorf("topic %s: %d messages over %d keys, want %d over %d", topic, n, len(perKey), Events, Keys)
	}
	per := Events / Keys
	for k, got := range perKey {
		if len(got) != per {
			return fmt.Errorf("topic %s key %s: got seqs %v, want 0..%d once each in order", topic, k, got, per-1)
		}
		for i, s := range got {
			if s != i {
				return fmt.Errorf("topic %s key %s: got seqs %v, want 0..%d once each in order", topic, k, got, per-1)
			}
		}
	}
	return nil
}

func topicName(project, id string) string { return "projects/" + project + "/topics/" + id }

// Median returns the median of v (the upper one for an even count), 0 for
// none.
func Median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
