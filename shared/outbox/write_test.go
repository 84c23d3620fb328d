package outbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/retry"
	"example.com/platform/shared/testing/pgtest"
)

func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := outbox.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return pool
}

func TestMigrateTwice(t *testing.T) {
	pool := migrated(t)
	if err := outbox.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	id, err := outbox.Write(ctx, pool, "t1", messaging.Message{Data: []byte{0, 1, 2}, Attributes: map[string]string{"ce-id": "x"}, OrderingKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		topic, key string
		data       []byte
		attrs      map[string]string
		published  *time.Time
		attempts   int
	)
	err = pool.QueryRow(ctx, `SELECT topic, ordering_key, data, attributes, published_at, attempts FROM outbox WHERE id = $1`, id).
		Scan(&topic, &key, &data, &attrs, &published, &attempts)
	if err != nil {
		t.Fatal(err)
	}
	if topic != "t1" || key != "k" || string(data) != "\x00\x01\x02" || attrs["ce-id"] != "x" || published != nil || attempts != 0 {
		t.Fatalf("row = %q %q %v %v %v %d", topic, key, data, attrs, published, attempts)
	}
	// Attributes only, no data: allowed (Pub/Sub accepts it).
	if _, err := outbox.Write(ctx, pool, "t1", messaging.Message{Attributes: map[string]string{"a": "b"}}); err != nil {
		t.Fatalf("attributes-only message: %v", err)
	}
}

func TestWriteRejectsInvalidMessages(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	ok := messaging.Message{Data: []byte("x")}
	cases := []struct {
		name  string
		w     outbox.Writer
		topic string
		m     messaging.Message
		want  error
	}{
		{"empty topic", outbox.Writer{}, "", ok, outbox.ErrEmptyTopic},
		{"empty message", outbox.Writer{}, "t", messaging.Message{}, outbox.ErrInvalidMessage},
		{"over default limit", outbox.Writer{}, "t", messaging.Message{Data: make([]byte, outbox.DefaultMaxMessageBytes+1)}, outbox.ErrMessageTooLarge},
		{"over configured limit", outbox.Writer{MaxMessageBytes: 10}, "t", messaging.Message{Data: []byte("12345678"), OrderingKey: "abc"}, outbox.ErrMessageTooLarge},
		{"attributes count toward the limit", outbox.Writer{MaxMessageBytes: 10}, "t", messaging.Message{Data: []byte("12345"), Attributes: map[string]string{"abc": "def"}}, outbox.ErrMessageTooLarge},
		{"long ordering key", outbox.Writer{}, "t", messaging.Message{Data: []byte("x"), OrderingKey: strings.Repeat("k", 1025)}, outbox.ErrInvalidMessage},
		{"long attribute value", outbox.Writer{}, "t", messaging.Message{Data: []byte("x"), Attributes: map[string]string{"a": strings.Repeat("v", 1025)}}, outbox.ErrInvalidMessage},
		{"NUL in attribute", outbox.Writer{}, "t", messaging.Message{Data: []byte("x"), Attributes: map[string]string{"a": "\x00"}}, outbox.ErrInvalidMessage},
		{"invalid UTF-8 key", outbox.Writer{}, "t", messaging.Message{Data: []byte("x"), OrderingKey: "\xff"}, outbox.ErrInvalidMessage},
		{"negative limit", outbox.Writer{MaxMessageBytes: -1}, "t", ok, outbox.ErrInvalidMaxMessageBytes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.w.Write(ctx, pool, c.topic, c.m)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.want != outbox.ErrInvalidMaxMessageBytes && !retry.IsPermanent(err) {
				t.Fatalf("err %v is not permanent", err)
			}
		})
	}
	// Exactly at the configured limit is fine.
	if _, err := (outbox.Writer{MaxMessageBytes: 10}).Write(ctx, pool, "t", messaging.Message{Data: []byte("1234567"), OrderingKey: "abc"}); err != nil {
		t.Fatalf("message at the limit: %v", err)
	}
	// WriteMany writes nothing when one entry is invalid.
	_, err := outbox.WriteMany(ctx, pool, []outbox.Entry{{Topic: "t", Message: ok}, {Topic: "", Message: ok}})
	if !errors.Is(err, outbox.ErrEmptyTopic) {
		t.Fatalf("WriteMany err = %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows = %d, %v; want only the message at the limit", n, err)
	}
}

func TestWriteManyKeepsOrder(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	var entries []outbox.Entry
	for i := range 30 {
		e := entry([]string{"b", "a", "", "c"}[i%4], i)
		if i%5 == 0 {
			e.Topic = "other"
		}
		entries = append(entries, e)
	}
	var ids []int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		ids, err = outbox.WriteMany(ctx, tx, entries)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(entries) {
		t.Fatalf("got %d ids for %d entries", len(ids), len(entries))
	}
	for i, id := range ids {
		if i > 0 && id <= ids[i-1] {
			t.Fatalf("ids not ascending: %v", ids)
		}
		var topic, data string
		if err := pool.QueryRow(ctx, `SELECT topic, convert_from(data, 'UTF8') FROM outbox WHERE id = $1`, id).Scan(&topic, &data); err != nil {
			t.Fatal(err)
		}
		if topic != entries[i].Topic || data != string(entries[i].Message.Data) {
			t.Fatalf("id %d holds %s %q, want entry %d %s %q", id, topic, data, i, entries[i].Topic, entries[i].Message.Data)
		}
	}
}

// TestWriteSerialisesWritersOfAKey shows why id order is commit order: a
// second transaction writing the same ordering key waits for the first to
// end, while other keys and NoKeyLock writers do not wait.
func TestWriteSerialisesWritersOfAKey(t *testing.T) {
	pool := migrated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx1, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(ctx)
	id1, err := outbox.Write(ctx, tx1, topic, msg("k", 1))
	if err != nil {
		t.Fatal(err)
	}
	// Another key and a NoKeyLock writer go through at once.
	if _, err := outbox.Write(ctx, pool, topic, msg("other", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := (outbox.Writer{NoKeyLock: true}).Write(ctx, pool, topic, msg("k", 99)); err != nil {
		t.Fatal(err)
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	done := make(chan int64, 1)
	go func() {
		// WriteMany takes the same lock (a different code path than Write).
		var ids []int64
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var err error
			ids, err = outbox.WriteMany(ctx, tx, []outbox.Entry{entry("z", 0), entry("k", 2)})
			return err
		})
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		done <- ids[1]
	}()
	// Wait until the second writer is blocked on the key's advisory lock.
	for {
		var waiting bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted)`, pid).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case id := <-done:
			t.Fatalf("second writer of the key finished (id %d) while the first transaction is open", id)
		default:
		}
	}
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if id2 := <-done; id2 <= id1 {
		t.Fatalf("second writer got id %d, first %d", id2, id1)
	}
}
