package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/postgres"
	"example.com/platform/shared/retry"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Component is the name the schema is migrated under (postgres.Migrate;
// version table goose_outbox).
const Component = "outbox"

// Migrations returns the embedded goose migrations of the outbox table.
func Migrations() fs.FS {
	sub, err := subFS()
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// Migrate creates or upgrades the outbox table. It is safe to call from
// every process at start (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := subFS()
	if err != nil {
		return err
	}
	return postgres.Migrate(ctx, pool, Component, sub)
}

// Pub/Sub limits checked by Write, so a message Pub/Sub would reject is
// refused inside the caller's transaction instead of blocking its ordering
// key in the outbox forever.
const (
	// DefaultMaxMessageBytes is Pub/Sub's limit on one message (10 MB),
	// counted as data plus attribute keys and values plus ordering key.
	DefaultMaxMessageBytes = 10_000_000
	MaxAttributes          = 100
	MaxAttributeKeyBytes   = 256
	MaxAttributeValueBytes = 1024
	MaxOrderingKeyBytes    = 1024
)

// Errors returned by Write and WriteMany, wrapped with the details and
// marked permanent (retry.ErrPermanent): writing the same message again
// fails the same way.
var (
	ErrEmptyTopic      = errors.New("outbox: empty topic")
	ErrMessageTooLarge = errors.New("outbox: message too large")
	ErrInvalidMessage  = errors.New("outbox: invalid message")
	// ErrInvalidMaxMessageBytes is returned by Writer.Validate.
	ErrInvalidMaxMessageBytes = errors.New("outbox: MaxMessageBytes must not be negative")
)

// Writer writes outbox rows. The zero value is ready to use; the package
// functions Write and WriteMany use it.
type Writer struct {
	// MaxMessageBytes is the largest message accepted (data + attribute
	// keys and values + ordering key). Zero means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// NoKeyLock skips the transaction-scoped advisory lock per (topic,
	// ordering key) that serialises concurrent writers of one key, so that
	// id order equals commit order. Set it only when the caller already
	// serialises them (for example by holding the aggregate's row lock).
	NoKeyLock bool
}

// Validate reports a configuration error.
func (w Writer) Validate() error {
	if w.MaxMessageBytes < 0 {
		return ErrInvalidMaxMessageBytes
	}
	return nil
}

func (w Writer) maxBytes() int {
	if w.MaxMessageBytes == 0 {
		return DefaultMaxMessageBytes
	}
	return w.MaxMessageBytes
}

// Entry is one message for WriteMany.
type Entry struct {
	Topic   string
	Message messaging.Message
}

// Write inserts m for topic with the zero Writer. See Writer.Write.
func Write(ctx context.Context, q postgres.Querier, topic string, m messaging.Message) (int64, error) {
	return Writer{}.Write(ctx, q, topic, m)
}

// WriteMany inserts entries with the zero Writer. See Writer.WriteMany.
func WriteMany(ctx context.Context, q postgres.Querier, entries []Entry) ([]int64, error) {
	return Writer{}.WriteMany(ctx, q, entries)
}

const writeOneSQL = `
WITH key_lock AS MATERIALIZED (
	SELECT pg_advisory_xact_lock(hashtext($1::text), hashtext($2::text))
	WHERE $5::bool AND $2::text <> '')
INSERT INTO outbox (topic, ordering_key, data, attributes)
SELECT $1::text, $2::text, $3::bytea, $4::text::jsonb FROM (SELECT count(*) FROM key_lock) AS l
RETURNING id`

// Write inserts m as a pending row for topic and returns its id. Run it with
// the caller's transaction as q, so the row commits or rolls back with the
// business writes; after commit, pass the id to Relay.PublishAfterCommit.
// Rows of one (topic, ordering key) are published in id order. Unless
// NoKeyLock is set, Write holds an advisory lock on (topic, ordering key)
// until q's transaction ends, so a concurrent transaction writing the same
// key waits for it. An empty topic, a message over the size limit or one
// breaking another Pub/Sub limit is refused with a permanent error wrapping
// ErrEmptyTopic, ErrMessageTooLarge or ErrInvalidMessage.
func (w Writer) Write(ctx context.Context, q postgres.Querier, topic string, m messaging.Message) (int64, error) {
	attrs, err := w.check(topic, m)
	if err != nil {
		return 0, err
	}
	var id int64
	err = q.QueryRow(ctx, writeOneSQL, topic, m.OrderingKey, nonNil(m.Data), attrs, !w.NoKeyLock).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("outbox: write to %s: %w", topic, err)
	}
	return id, nil
}

const allocateSQL = `
WITH key_lock AS MATERIALIZED (
	SELECT count(pg_advisory_xact_lock(hashtext(t), hashtext(k))) AS n
	FROM (SELECT DISTINCT t, k FROM unnest($1::text[], $2::text[]) AS u(t, k)
	      WHERE $4::bool AND k <> '' ORDER BY t, k) AS keys)
SELECT nextval(pg_get_serial_sequence('outbox', 'id'))
FROM key_lock, generate_series(1, $3::int)`

const insertManySQL = `
INSERT INTO outbox (id, topic, ordering_key, data, attributes)
SELECT id, t, k, d, a::jsonb
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::text[]) AS u(id, t, k, d, a)`

// WriteMany inserts entries in order, like Write for each, and returns their
// ids in the same order (ascending). Nothing is written if any entry is
// invalid. Keys are locked in a fixed order to avoid deadlocks between two
// WriteMany calls.
func (w Writer) WriteMany(ctx context.Context, q postgres.Querier, entries []Entry) ([]int64, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	n := len(entries)
	topics, keys, attrs := make([]string, n), make([]string, n), make([]string, n)
	data := make([][]byte, n)
	for i, e := range entries {
		a, err := w.check(e.Topic, e.Message)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		topics[i], keys[i], attrs[i], data[i] = e.Topic, e.Message.OrderingKey, a, nonNil(e.Message.Data)
	}
	if n == 1 {
		id, err := w.Write(ctx, q, topics[0], entries[0].Message)
		if err != nil {
			return nil, err
		}
		return []int64{id}, nil
	}
	rows, err := q.Query(ctx, allocateSQL, topics, keys, n, !w.NoKeyLock)
	if err != nil {
		return nil, fmt.Errorf("outbox: allocate ids: %w", err)
	}
	ids := make([]int64, 0, n)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("outbox: allocate ids: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: allocate ids: %w", err)
	}
	if len(ids) != n {
		return nil, fmt.Errorf("outbox: allocate ids: got %d, want %d", len(ids), n)
	}
	slices.Sort(ids)
	if _, err := q.Exec(ctx, insertManySQL, ids, topics, keys, data, attrs); err != nil {
		return nil, fmt.Errorf("outbox: write %d messages: %w", n, err)
	}
	return ids, nil
}

// check validates topic and m against Pub/Sub's limits and returns the
// attributes as JSON.
func (w Writer) check(topic string, m messaging.Message) (string, error) {
	if err := w.Validate(); err != nil {
		return "", err
	}
	if topic == "" {
		return "", retry.Permanent(ErrEmptyTopic)
	}
	if len(m.Data) == 0 && len(m.Attributes) == 0 {
		return "", retry.Permanentf("outbox: write to %s: %w: no data and no attributes", topic, ErrInvalidMessage)
	}
	if len(m.OrderingKey) > MaxOrderingKeyBytes {
		return "", retry.Permanentf("outbox: write to %s: %w: ordering key is %d bytes, limit %d", topic, ErrInvalidMessage, len(m.OrderingKey), MaxOrderingKeyBytes)
	}
	if len(m.Attributes) > MaxAttributes {
		return "", retry.Permanentf("outbox: write to %s: %w: %d attributes, limit %d", topic, ErrInvalidMessage, len(m.Attributes), MaxAttributes)
	}
	if !validText(topic) || !validText(m.OrderingKey) {
		return "", retry.Permanentf("outbox: write to %.80q: %w: topic and ordering key must be UTF-8 without NUL", topic, ErrInvalidMessage)
	}
	size := len(m.Data) + len(m.OrderingKey)
	for k, v := range m.Attributes {
		if !validText(k) || !validText(v) {
			return "", retry.Permanentf("outbox: write to %s: %w: attribute %.40q: keys and values must be UTF-8 without NUL", topic, ErrInvalidMessage, k)
		}
		if k == "" || len(k) > MaxAttributeKeyBytes {
			return "", retry.Permanentf("outbox: write to %s: %w: attribute key %.40q is %d bytes, want 1..%d", topic, ErrInvalidMessage, k, len(k), MaxAttributeKeyBytes)
		}
		if len(v) > MaxAttributeValueBytes {
			return "", retry.Permanentf("outbox: write to %s: %w: attribute %q value is %d bytes, limit %d", topic, ErrInvalidMessage, k, len(v), MaxAttributeValueBytes)
		}
		size += len(k) + len(v)
	}
	if max := w.maxBytes(); size > max {
		return "", retry.Permanentf("outbox: write to %s: %w: %d bytes, limit %d", topic, ErrMessageTooLarge, size, max)
	}
	if m.Attributes == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m.Attributes)
	if err != nil {
		return "", fmt.Errorf("outbox: encode attributes: %w", err)
	}
	return string(b), nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// validText reports whether s can be stored in a PostgreSQL text or jsonb
// value unchanged and sent as a protobuf string.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func subFS() (fs.FS, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("outbox: migrations: %w", err)
	}
	return sub, nil
}
