package outbox_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const topic = "order.created"

// env is a migrated database and a pstest server with topic created.
type env struct {
	pool *pgxpool.Pool
	ps   *pubsubtest.Fake
	pub  *messaging.PubSub
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := outbox.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	ps := pubsubtest.New(t)
	ps.CreateTopic(t, topic)
	pub := messaging.NewPubSub(ps.Client)
	t.Cleanup(pub.Stop)
	return &env{pool: pool, ps: ps, pub: pub}
}

func (e *env) relay(t *testing.T, cfg outbox.Config) *outbox.Relay {
	t.Helper()
	cfg.Pool = e.pool
	if cfg.Publisher == nil {
		cfg.Publisher = e.pub
	}
	r, err := outbox.NewRelay(cfg)
	if err != nil {
		t.Fatalf("new relay: %v", err)
	}
	return r
}

// msg is message number seq of ordering key key; seq travels as an
// attribute so tests can check order.
func msg(key string, seq int) messaging.Message {
	return messaging.Message{
		Data:        []byte(fmt.Sprintf("%s#%d", key, seq)),
		Attributes:  map[string]string{"seq": strconv.Itoa(seq), "key": key},
		OrderingKey: key,
	}
}

// write commits entries in one transaction and returns their ids.
func (e *env) write(t *testing.T, entries ...outbox.Entry) []int64 {
	t.Helper()
	var ids []int64
	err := pgx.BeginFunc(context.Background(), e.pool, func(tx pgx.Tx) error {
		var err error
		ids, err = outbox.WriteMany(context.Background(), tx, entries)
		return err
	})
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	return ids
}

func entry(key string, seq int) outbox.Entry {
	return outbox.Entry{Topic: topic, Message: msg(key, seq)}
}

// published returns, per ordering key, the seq attributes of the messages
// pstest received, in the order it received them.
func (e *env) published(t *testing.T) map[string][]int {
	t.Helper()
	out := map[string][]int{}
	for _, m := range e.ps.Server.Messages() {
		seq, err := strconv.Atoi(m.Attributes["seq"])
		if err != nil {
			t.Fatalf("message %s without seq: %v", m.ID, m.Attributes)
		}
		if m.Attributes["key"] != m.OrderingKey {
			t.Fatalf("message %s: ordering key %q, attribute key %q", m.ID, m.OrderingKey, m.Attributes["key"])
		}
		out[m.OrderingKey] = append(out[m.OrderingKey], seq)
	}
	return out
}

func (e *env) pending(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// retryNow ends the backoff of every failed row, as if its retry time had
// come.
func (e *env) retryNow(t *testing.T) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), `UPDATE outbox SET next_attempt_at = now() WHERE published_at IS NULL`); err != nil {
		t.Fatal(err)
	}
}

func seqs(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// failOnce wraps p and fails the first publish of the message whose data is
// target, until disarmed.
type failOnce struct {
	next   messaging.Publisher
	target string
	fired  atomic.Bool
}

func newFailOnce(next messaging.Publisher, target string) *failOnce {
	return &failOnce{next: next, target: target}
}

func (f *failOnce) Publish(ctx context.Context, topic string, m messaging.Message) (string, error) {
	if string(m.Data) == f.target && f.fired.CompareAndSwap(false, true) {
		return "", fmt.Errorf("injected failure for %s", f.target)
	}
	return f.next.Publish(ctx, topic, m)
}
