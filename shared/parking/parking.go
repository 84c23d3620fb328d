// Package parking keeps per-key order when a consumer that needs it
// dead-letters an event.
//
// Pub/Sub delivers the messages of one ordering key in order, but once it
// (or the consumer) dead-letters message n of key K it goes on with n+1: a
// consumer can apply "order cancelled" while the "order created" before it
// sits in the dead-letter topic. For subscriptions consumed with
// `ordering: true` the handler (shared/handler) therefore parks the key:
//
//   - when it dead-letters an event of key K, it records K as parked for
//     the subscription, with that event as the key's head (Store.Park);
//   - every later event of K for that subscription is stored here in
//     arrival order and acknowledged, not applied (Store.Add); other keys
//     flow on;
//   - an operator replays the head (its dead letter, once the cause is
//     fixed) or discards it with a reason (eventctl parked replay/discard,
//     Store.RequestRelease); the delivery of the replayed head, or of the
//     first parked event for a discard, applies the head and then every
//     parked event in order, once each, through the consumer's normal
//     idempotent path, and releases the key when none is left. A parked
//     event that is dead-lettered in turn becomes the key's new head and
//     the key stays parked (Store.Repark).
//
// Draining is leased (Store.StartDrain) so two deliveries never apply one
// key's events at once; a delivery that crashes mid-release leaves the
// lease to expire and the redelivery of its trigger message to go on where
// it stopped.
//
// The tables live in the kernel's schema (component "parking"); see
// migrations/.
package parking

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/messaging"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Component is the name the schema is migrated under (postgres.Migrate;
// version table goose_parking).
const Component = "parking"

// Migrations returns the embedded goose migrations of the parking tables.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// Tables are the parking tables, granted to every function with a
// database like the other kernel tables.
var Tables = []string{"parked_keys", "parked_events", "parked_releases"}

// State is where a parked key is in its release.
type State string

// States of a parked key.
const (
	// Parked: waiting for an operator.
	Parked State = "parked"
	// Replaying: an operator replayed the head; its delivery applies it
	// and then the parked events.
	Replaying State = "replaying"
	// Draining: the head is resolved (applied or discarded); the parked
	// events are being applied in order.
	Draining State = "draining"
)

// Release actions.
const (
	ActionReplay  = "replay"
	ActionDiscard = "discard"
)

// Errors of the store.
var (
	// ErrNotParked: the key is not parked (any more).
	ErrNotParked = errors.New("parking: the key is not parked")
	// ErrNoReason: a discard needs a reason.
	ErrNoReason = errors.New("parking: discarding a dead letter needs a reason")
	// ErrDrainLost: the caller's drain lease expired and another delivery
	// took it over.
	ErrDrainLost = errors.New("parking: the drain lease was taken over")
)

// Key is one ordering key of one subscription.
type Key struct {
	Subscription string `json:"subscription"`
	OrderingKey  string `json:"ordering_key"`
}

func (k Key) String() string { return k.Subscription + "/" + k.OrderingKey }

// Event is one stored message: a key's head or a parked event.
type Event struct {
	// Seq orders the parked events of a key (0 for a head).
	Seq int64 `json:"seq,omitempty"`
	// EventKey identifies the event within the subscription (the
	// CloudEvent source and id, or the message id of an undecodable one).
	EventKey  string            `json:"event_key"`
	EventID   string            `json:"event_id"`
	EventType string            `json:"event_type"`
	MessageID string            `json:"message_id"`
	Data      []byte            `json:"data"`
	Attrs     map[string]string `json:"attributes"`
	ParkedAt  time.Time         `json:"parked_at"`
}

// Message is the Pub/Sub message of e on key k.
func (e Event) Message(k Key) messaging.Message {
	return messaging.Message{Data: e.Data, Attributes: e.Attrs, OrderingKey: k.OrderingKey}
}

// Head is a parked key and the dead letter at its head.
type Head struct {
	Key
	Consumer string `json:"consumer"`
	// Topic is the topic the subscription consumes, where a replay goes.
	Topic string `json:"topic"`
	State State  `json:"state"`
	Head  Event  `json:"head"`
	// DeadLetterID is the message id of the head's dead letter.
	DeadLetterID string `json:"dead_letter_id"`
	Reason       string `json:"reason"`
	// DeadLetters counts the key's dead letters since it was parked.
	DeadLetters int       `json:"dead_letters"`
	ParkedAt    time.Time `json:"parked_at"`
	// Parked is the number of parked events (List and Get only).
	Parked int `json:"parked"`
	// Release is the last release asked for, if any.
	ReleaseAction string     `json:"release_action,omitempty"`
	ReleasedBy    string     `json:"released_by,omitempty"`
	ReleaseReason string     `json:"release_reason,omitempty"`
	ReleaseAt     *time.Time `json:"release_requested_at,omitempty"`
}

// DB is what the store needs: queries and transactions (*pgxpool.Pool).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

var _ DB = (*pgxpool.Pool)(nil)

// Store keeps parked keys in PostgreSQL. It is safe for concurrent use.
type Store struct{ db DB }

// New returns the store on db.
func New(db DB) *Store { return &Store{db: db} }

// Status is what a delivery needs to know of its key: whether it is
// parked, in which state, and which event is its head. Lookup returns it.
type Status struct {
	State        State
	HeadEventKey string
}

// Lookup returns the status of k, or ok false when k is not parked: one
// primary-key read, the cost every delivery of an ordering subscription
// pays.
func (s *Store) Lookup(ctx context.Context, k Key) (st Status, ok bool, err error) {
	err = s.db.QueryRow(ctx, `SELECT state, head_event_key FROM parked_keys WHERE subscription = $1 AND ordering_key = $2`,
		k.Subscription, k.OrderingKey).Scan(&st.State, &st.HeadEventKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return Status{}, false, nil
	}
	if err != nil {
		return Status{}, false, fmt.Errorf("parking: look up %s: %w", k, err)
	}
	return st, true, nil
}

// Park records k as parked with h as its head (h.Key is k). When k is
// parked already (two deliveries of the key dead-lettered at once) the
// head stays and the dead letter is counted.
func (s *Store) Park(ctx context.Context, h Head) error {
	attrs, err := json.Marshal(nonNil(h.Head.Attrs))
	if err != nil {
		return fmt.Errorf("parking: park %s: %w", h.Key, err)
	}
	_, err = s.db.Exec(ctx, `
INSERT INTO parked_keys (subscription, ordering_key, consumer, topic, head_event_key, head_event_id,
                         head_event_type, head_message_id, head_data, head_attributes, dead_letter_id, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (subscription, ordering_key) DO UPDATE SET dead_letters = parked_keys.dead_letters + 1`,
		h.Subscription, h.OrderingKey, h.Consumer, h.Topic, h.Head.EventKey, h.Head.EventID,
		h.Head.EventType, h.Head.MessageID, nonNilBytes(h.Head.Data), attrs, h.DeadLetterID, h.Reason)
	if err != nil {
		return fmt.Errorf("parking: park %s: %w", h.Key, err)
	}
	return nil
}

// Add parks e behind k's head, after every event parked before it. It
// reports false when e was parked already (a redelivery). It returns
// ErrNotParked when k was released meanwhile: the caller then applies e
// normally.
func (s *Store) Add(ctx context.Context, key Key, e Event) (bool, error) {
	attrs, err := json.Marshal(nonNil(e.Attrs))
	if err != nil {
		return false, fmt.Errorf("parking: add to %s: %w", key, err)
	}
	tag, err := s.db.Exec(ctx, `
INSERT INTO parked_events (subscription, ordering_key, event_key, event_id, event_type, message_id, data, attributes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (subscription, event_key) DO NOTHING`,
		key.Subscription, key.OrderingKey, e.EventKey, e.EventID, e.EventType, e.MessageID, nonNilBytes(e.Data), attrs)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation
		return false, ErrNotParked
	}
	if err != nil {
		return false, fmt.Errorf("parking: add to %s: %w", key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Contains reports whether the event eventKey is parked behind k.
func (s *Store) Contains(ctx context.Context, key Key, eventKey string) (bool, error) {
	var ok bool
	err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM parked_events WHERE subscription = $1 AND ordering_key = $2 AND event_key = $3)`,
		key.Subscription, key.OrderingKey, eventKey).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("parking: look up event of %s: %w", key, err)
	}
	return ok, nil
}

// MarkReplaying moves k from parked to replaying: its head's replay
// arrived (eventctl parked replay sets it too). It is a no-op in any other
// state.
func (s *Store) MarkReplaying(ctx context.Context, key Key) error {
	_, err := s.db.Exec(ctx, `UPDATE parked_keys SET state = 'replaying' WHERE subscription = $1 AND ordering_key = $2 AND state = 'parked'`,
		key.Subscription, key.OrderingKey)
	if err != nil {
		return fmt.Errorf("parking: mark %s replaying: %w", key, err)
	}
	return nil
}

// HeadResolved moves k to draining: its head was applied (or is a
// duplicate of an applied event).
func (s *Store) HeadResolved(ctx context.Context, key Key) error {
	_, err := s.db.Exec(ctx, `UPDATE parked_keys SET state = 'draining' WHERE subscription = $1 AND ordering_key = $2`,
		key.Subscription, key.OrderingKey)
	if err != nil {
		return fmt.Errorf("parking: resolve head of %s: %w", key, err)
	}
	return nil
}

// Repark makes the dead-lettered event e the new head of k and parks k
// again (state parked, release cleared, drain lease dropped). When e was a
// parked event (Seq > 0) it leaves the parked events. When e is the head
// itself (its replay failed again) only the dead letter changes.
func (s *Store) Repark(ctx context.Context, key Key, e Event, deadLetterID, reason string) error {
	attrs, err := json.Marshal(nonNil(e.Attrs))
	if err != nil {
		return fmt.Errorf("parking: repark %s: %w", key, err)
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("parking: repark %s: begin: %w", key, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	tag, err := tx.Exec(ctx, `
UPDATE parked_keys SET state = 'parked', head_event_key = $3, head_event_id = $4, head_event_type = $5,
       head_message_id = $6, head_data = $7, head_attributes = $8, dead_letter_id = $9, reason = $10,
       dead_letters = dead_letters + 1, head_since = now(), drain_token = NULL, drain_until = NULL
 WHERE subscription = $1 AND ordering_key = $2`,
		key.Subscription, key.OrderingKey, e.EventKey, e.EventID, e.EventType, e.MessageID, nonNilBytes(e.Data), attrs, deadLetterID, reason)
	if err != nil {
		return fmt.Errorf("parking: repark %s: %w", key, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotParked
	}
	if e.Seq > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM parked_events WHERE seq = $1`, e.Seq); err != nil {
			return fmt.Errorf("parking: repark %s: %w", key, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("parking: repark %s: commit: %w", key, err)
	}
	return nil
}

// StartDrain takes the drain lease of k for lease, when k is draining and
// no other delivery holds an unexpired lease. It reports false otherwise.
func (s *Store) StartDrain(ctx context.Context, key Key, token string, lease time.Duration) (bool, error) {
	tag, err := s.db.Exec(ctx, `
UPDATE parked_keys SET drain_token = $3, drain_until = now() + $4 * interval '1 millisecond'
 WHERE subscription = $1 AND ordering_key = $2 AND state = 'draining'
   AND (drain_until IS NULL OR drain_until < now() OR drain_token = $3)`,
		key.Subscription, key.OrderingKey, token, lease.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("parking: start draining %s: %w", key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// StopDrain gives the drain lease of k back, so the redelivery of the
// trigger goes on at once.
func (s *Store) StopDrain(ctx context.Context, key Key, token string) error {
	_, err := s.db.Exec(ctx, `UPDATE parked_keys SET drain_token = NULL, drain_until = NULL
 WHERE subscription = $1 AND ordering_key = $2 AND drain_token = $3`, key.Subscription, key.OrderingKey, token)
	if err != nil {
		return fmt.Errorf("parking: stop draining %s: %w", key, err)
	}
	return nil
}

// Next returns the oldest parked event of k, or ok false when none is
// left.
func (s *Store) Next(ctx context.Context, key Key) (e Event, ok bool, err error) {
	var attrs []byte
	err = s.db.QueryRow(ctx, `
SELECT seq, event_key, event_id, event_type, message_id, data, attributes, parked_at FROM parked_events
 WHERE subscription = $1 AND ordering_key = $2 ORDER BY seq LIMIT 1`, key.Subscription, key.OrderingKey).
		Scan(&e.Seq, &e.EventKey, &e.EventID, &e.EventType, &e.MessageID, &e.Data, &attrs, &e.ParkedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("parking: next event of %s: %w", key, err)
	}
	if err := json.Unmarshal(attrs, &e.Attrs); err != nil {
		return Event{}, false, fmt.Errorf("parking: event %d of %s: attributes: %w", e.Seq, key, err)
	}
	return e, true, nil
}

// Applied removes the parked event seq of k, once it was applied.
func (s *Store) Applied(ctx context.Context, key Key, seq int64) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM parked_events WHERE seq = $1`, seq); err != nil {
		return fmt.Errorf("parking: remove applied event %d of %s: %w", seq, key, err)
	}
	return nil
}

// Finish releases k when no parked event is left and the caller holds
// its drain lease. It reports false when an event was parked meanwhile (the
// caller drains it and tries again) and ErrDrainLost when the lease was
// taken over.
//
// The key's row is locked first: an event being parked holds a share lock
// on it (its foreign key) until it commits, so the count, a new statement
// with a new snapshot, sees every event parked before the lock was taken,
// and every later one fails with ErrNotParked and is applied normally.
func (s *Store) Finish(ctx context.Context, key Key, token string) (bool, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("parking: release %s: begin: %w", key, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var held bool
	err = tx.QueryRow(ctx, `SELECT drain_token IS NOT DISTINCT FROM $3 FROM parked_keys
 WHERE subscription = $1 AND ordering_key = $2 FOR UPDATE`, key.Subscription, key.OrderingKey, token).Scan(&held)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil // released by another delivery
	}
	if err != nil {
		return false, fmt.Errorf("parking: release %s: %w", key, err)
	}
	if !held {
		return false, ErrDrainLost
	}
	var left int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM parked_events WHERE subscription = $1 AND ordering_key = $2`,
		key.Subscription, key.OrderingKey).Scan(&left); err != nil {
		return false, fmt.Errorf("parking: release %s: %w", key, err)
	}
	if left > 0 {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM parked_keys WHERE subscription = $1 AND ordering_key = $2`,
		key.Subscription, key.OrderingKey); err != nil {
		return false, fmt.Errorf("parking: release %s: %w", key, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("parking: release %s: commit: %w", key, err)
	}
	return true, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
