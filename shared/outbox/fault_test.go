package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/testing/logbuf"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
)

// TestSlowPublisherUnderIdleTransactionTimeout: PostgreSQL kills any
// session idle in a transaction for 1s, and every publish takes 250ms, so
// a key of 5 rows takes 1.25s to publish. The relay must still drain the
// outbox, publishing every row exactly once and in order, because it holds
// no transaction across publishes. (The old relay held its claim
// transaction open while publishing: it was killed in every pass, lost its
// marks and republished the same rows forever.)
func TestSlowPublisherUnderIdleTransactionTimeout(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "1000" // ms
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var timeout string
	if err := pool.QueryRow(ctx, `SHOW idle_in_transaction_session_timeout`).Scan(&timeout); err != nil || timeout != "1s" {
		t.Fatalf("idle_in_transaction_session_timeout = %q, %v; want 1s", timeout, err)
	}
	if err := outbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	ps := pubsubtest.New(t)
	ps.CreateTopic(t, topic)
	pub := messaging.NewPubSub(ps.Client)
	t.Cleanup(pub.Stop)
	e := &env{pool: pool, ps: ps, pub: pub}

	var entries []outbox.Entry
	for seq := range 5 {
		for _, k := range []string{"a", "b", "c", "d"} {
			entries = append(entries, entry(k, seq))
		}
	}
	e.write(t, entries...)
	var calls atomic.Int64
	slow := messaging.PublisherFunc(func(ctx context.Context, topic string, m messaging.Message) (string, error) {
		calls.Add(1)
		select { // injected latency of a slow Pub/Sub, not synchronisation
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return pub.Publish(ctx, topic, m)
	})
	r := e.relay(t, outbox.Config{Logger: quiet, Publisher: slow})
	for pass := 0; pass < 3 && e.pending(t) > 0; pass++ {
		if _, err := r.PublishPending(ctx); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
	}
	if n := e.pending(t); n != 0 {
		t.Fatalf("%d of 20 rows still pending after 3 passes (%d publishes)", n, calls.Load())
	}
	if n := calls.Load(); n != 20 {
		t.Fatalf("%d publishes for 20 rows, want 20", n)
	}
	got := e.published(t)
	for _, k := range []string{"a", "b", "c", "d"} {
		if !slices.Equal(got[k], seqs(0, 5)) {
			t.Errorf("key %s published %v, want 0..4 once each in order", k, got[k])
		}
	}
}

// stuckLog is the JSON form of the stuck-row warning.
type stuckLog struct {
	Level       string  `json:"level"`
	Msg         string  `json:"msg"`
	ID          int64   `json:"outbox_id"`
	Topic       string  `json:"topic"`
	OrderingKey string  `json:"ordering_key"`
	Attempts    int     `json:"attempts"`
	Age         float64 `json:"age_seconds"`
	RetryIn     float64 `json:"retry_in_seconds"`
	LastError   string  `json:"last_error"`
}

// TestPoisonRowBacksOffAndDoesNotSlowOtherKeys: one row can never be
// published. Every other key drains in the first tick of Run (its interval
// is an hour, so nothing is left for a second tick); the poison row is
// attempted once and backs off by default instead of being retried in
// every pass; its key waits behind it; it is reported as stuck (a WARN log
// line with fixed fields, Status, Stuck); parking keeps it and its key
// blocked; retrying it publishes the key in order.
func TestPoisonRowBacksOffAndDoesNotSlowOtherKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ids := e.write(t, entry("poison", 0), entry("poison", 1))
	poisonID := ids[0]
	const goodKeys, perKey = 30, 20
	var batch []outbox.Entry
	for i := range goodKeys * perKey {
		batch = append(batch, entry(fmt.Sprintf("good-%02d", i%goodKeys), i/goodKeys))
		if len(batch) == 100 {
			e.write(t, batch...)
			batch = nil
		}
	}
	if _, err := e.pool.Exec(ctx, `UPDATE outbox SET created_at = now() - interval '1 hour' WHERE id = $1`, poisonID); err != nil {
		t.Fatal(err)
	}

	var (
		healed    atomic.Bool
		good      atomic.Int64
		allGood   = make(chan struct{})
		poisonErr = errors.New("poison: the topic rejects this message")
	)
	pub := messaging.PublisherFunc(func(ctx context.Context, topic string, m messaging.Message) (string, error) {
		if string(m.Data) == "poison#0" && !healed.Load() {
			return "", poisonErr
		}
		id, err := e.pub.Publish(ctx, topic, m)
		if err == nil && strings.HasPrefix(m.OrderingKey, "good-") && good.Add(1) == goodKeys*perKey {
			close(allGood)
		}
		return id, err
	})
	var logs logbuf.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	r := e.relay(t, outbox.Config{Logger: logger, Publisher: pub, BatchSize: 50})

	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(runCtx, time.Hour) }()
	select {
	case <-allGood:
	case <-time.After(time.Minute):
		t.Fatalf("only %d of %d good rows published in the first tick", good.Load(), goodKeys*perKey)
	}
	stop()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}

	got := e.published(t)
	for k := range goodKeys {
		key := fmt.Sprintf("good-%02d", k)
		if !slices.Equal(got[key], seqs(0, perKey)) {
			t.Fatalf("key %s published %v, want 0..%d once each in order", key, got[key], perKey-1)
		}
	}
	if len(got["poison"]) != 0 || e.pending(t) != 2 {
		t.Fatalf("poison key published %v, %d pending; want nothing and both poison rows pending", got["poison"], e.pending(t))
	}
	var attempts int
	var retryIn float64
	if err := e.pool.QueryRow(ctx, `SELECT attempts, extract(epoch FROM next_attempt_at - now()) FROM outbox WHERE id = $1`, poisonID).Scan(&attempts, &retryIn); err != nil {
		t.Fatal(err)
	}
	// 12 passes of 50 rows: retried in every pass without a backoff. The
	// default backoff (1s, doubling) allows a second attempt only on a
	// very slow machine.
	if attempts < 1 || attempts > 2 || retryIn <= 0 {
		t.Fatalf("poison row: %d attempts, next attempt in %.1fs; want 1 (2 at most) and a backoff", attempts, retryIn)
	}

	// Reported as stuck: the log line, Status and Stuck.
	var stuck []stuckLog
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l stuckLog
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if l.Msg == outbox.StuckMessage {
			stuck = append(stuck, l)
		}
	}
	if len(stuck) != attempts {
		t.Fatalf("%d stuck warnings for %d attempts; log:\n%s", len(stuck), attempts, logs.Tail(20))
	}
	if l := stuck[0]; l.Level != "WARN" || l.ID != poisonID || l.Topic != topic || l.OrderingKey != "poison" ||
		l.Attempts != 1 || l.Age < 3600 || l.RetryIn <= 0 || !strings.Contains(l.LastError, poisonErr.Error()) {
		t.Fatalf("stuck warning %+v", l)
	}
	status, err := r.Status(ctx)
	if err != nil || len(status) != 1 || status[0].Pending != 2 || status[0].Failing != 1 || status[0].Stuck != 1 || status[0].Parked != 0 {
		t.Fatalf("status %+v, %v; want 2 pending, 1 failing, 1 stuck", status, err)
	}
	rows, err := outbox.Stuck(ctx, e.pool, outbox.DefaultStuckAfter, 10)
	if err != nil || len(rows) != 1 || rows[0].ID != poisonID || rows[0].Blocked != 1 || rows[0].Parked || rows[0].Attempts != attempts {
		t.Fatalf("stuck rows %+v, %v", rows, err)
	}

	// Parked: never claimed, and its key stays blocked behind it.
	if err := outbox.Park(ctx, e.pool, poisonID); err != nil {
		t.Fatal(err)
	}
	e.retryNow(t)
	if st, err := r.Drain(ctx); err != nil || st.Claimed != 0 {
		t.Fatalf("drain with the row parked: %+v, %v; want nothing claimed", st, err)
	}
	if rows, err := outbox.Stuck(ctx, e.pool, time.Hour*24, 10); err != nil || len(rows) != 1 || !rows[0].Parked {
		t.Fatalf("a parked row is listed whatever its age: %+v, %v", rows, err)
	}
	// Retried once the cause is fixed: the key is published in order.
	healed.Store(true)
	if err := outbox.Retry(ctx, e.pool, poisonID); err != nil {
		t.Fatal(err)
	}
	if st, err := r.Drain(ctx); err != nil || st.Published != 2 {
		t.Fatalf("drain after retry: %+v, %v", st, err)
	}
	if got := e.published(t)["poison"]; !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("poison key published %v", got)
	}
	if err := outbox.Retry(ctx, e.pool, poisonID); !errors.Is(err, outbox.ErrNotPending) {
		t.Fatalf("retry of a published row: %v", err)
	}
}
