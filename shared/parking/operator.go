package parking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// headColumns are the columns scanHead reads, in its order.
const headColumns = `subscription, ordering_key, consumer, topic, state, head_event_key, head_event_id,
       head_event_type, head_message_id, head_data, head_attributes, dead_letter_id, reason, dead_letters,
       parked_at, coalesce(release_action, ''), coalesce(released_by, ''), coalesce(release_reason, ''),
       release_requested_at,
       (SELECT count(*) FROM parked_events e WHERE e.subscription = k.subscription AND e.ordering_key = k.ordering_key)`

func scanHead(row pgx.Row) (Head, error) {
	var h Head
	var attrs []byte
	err := row.Scan(&h.Subscription, &h.OrderingKey, &h.Consumer, &h.Topic, &h.State, &h.Head.EventKey, &h.Head.EventID,
		&h.Head.EventType, &h.Head.MessageID, &h.Head.Data, &attrs, &h.DeadLetterID, &h.Reason, &h.DeadLetters,
		&h.ParkedAt, &h.ReleaseAction, &h.ReleasedBy, &h.ReleaseReason, &h.ReleaseAt, &h.Parked)
	if err != nil {
		return Head{}, err
	}
	h.Head.ParkedAt = h.ParkedAt
	if err := json.Unmarshal(attrs, &h.Head.Attrs); err != nil {
		return Head{}, fmt.Errorf("head attributes: %w", err)
	}
	return h, nil
}

// Filter selects parked keys for List. Zero fields match everything.
type Filter struct {
	Subscription string
	Consumer     string
}

// List returns the parked keys matching f, oldest first, with the number
// of events parked behind each.
func (s *Store) List(ctx context.Context, f Filter) ([]Head, error) {
	rows, err := s.db.Query(ctx, `SELECT `+headColumns+` FROM parked_keys k
 WHERE ($1 = '' OR subscription = $1) AND ($2 = '' OR consumer = $2)
 ORDER BY parked_at, subscription, ordering_key`, f.Subscription, f.Consumer)
	if err != nil {
		return nil, fmt.Errorf("parking: list: %w", err)
	}
	heads, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Head, error) { return scanHead(r) })
	if err != nil {
		return nil, fmt.Errorf("parking: list: %w", err)
	}
	return heads, nil
}

// Get returns the parked key k with its parked events in order, or
// ErrNotParked.
func (s *Store) Get(ctx context.Context, key Key) (Head, []Event, error) {
	h, err := scanHead(s.db.QueryRow(ctx, `SELECT `+headColumns+` FROM parked_keys k
 WHERE subscription = $1 AND ordering_key = $2`, key.Subscription, key.OrderingKey))
	if errors.Is(err, pgx.ErrNoRows) {
		return Head{}, nil, fmt.Errorf("%w: %s", ErrNotParked, key)
	}
	if err != nil {
		return Head{}, nil, fmt.Errorf("parking: get %s: %w", key, err)
	}
	evs, err := s.events(ctx, s.db, key)
	return h, evs, err
}

func (s *Store) events(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, key Key) ([]Event, error) {
	rows, err := q.Query(ctx, `
SELECT seq, event_key, event_id, event_type, message_id, data, attributes, parked_at FROM parked_events
 WHERE subscription = $1 AND ordering_key = $2 ORDER BY seq`, key.Subscription, key.OrderingKey)
	if err != nil {
		return nil, fmt.Errorf("parking: events of %s: %w", key, err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		var attrs []byte
		if err := r.Scan(&e.Seq, &e.EventKey, &e.EventID, &e.EventType, &e.MessageID, &e.Data, &attrs, &e.ParkedAt); err != nil {
			return Event{}, err
		}
		return e, json.Unmarshal(attrs, &e.Attrs)
	})
	if err != nil {
		return nil, fmt.Errorf("parking: events of %s: %w", key, err)
	}
	return evs, nil
}

// Release is an operator's request to release a parked key.
type Release struct {
	Key
	// Action is ActionReplay (apply the head again, then the parked
	// events) or ActionDiscard (skip the head, apply the parked events).
	Action string
	// By names the operator; Reason says why (required to discard).
	By, Reason string
}

// Released is what RequestRelease did.
type Released struct {
	Head Head
	// Trigger is the message to publish (on Head.Topic, with the key's
	// ordering key) so the consumer applies the key's events: the head for
	// a replay, the first parked event for a discard. Nil when the key was
	// released at once (a discard with nothing parked).
	Trigger *Event
}

// RequestRelease records r (audit row in parked_releases) and moves the
// key on: a replay to replaying, a discard to draining, or, for a discard
// with no parked event, releases it at once. Asking again while the key is
// being released records the request and returns the trigger again, for a
// trigger that was lost.
func (s *Store) RequestRelease(ctx context.Context, r Release) (Released, error) {
	if r.Action != ActionReplay && r.Action != ActionDiscard {
		return Released{}, fmt.Errorf("parking: unknown release action %q", r.Action)
	}
	r.Reason = strings.TrimSpace(r.Reason)
	if r.Action == ActionDiscard && r.Reason == "" {
		return Released{}, ErrNoReason
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return Released{}, fmt.Errorf("parking: release %s: begin: %w", r.Key, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	h, err := scanHead(tx.QueryRow(ctx, `SELECT `+headColumns+` FROM parked_keys k
 WHERE subscription = $1 AND ordering_key = $2 FOR UPDATE`, r.Subscription, r.OrderingKey))
	if errors.Is(err, pgx.ErrNoRows) {
		return Released{}, fmt.Errorf("%w: %s", ErrNotParked, r.Key)
	}
	if err != nil {
		return Released{}, fmt.Errorf("parking: release %s: %w", r.Key, err)
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO parked_releases (subscription, ordering_key, head_event_id, dead_letter_id, action, released_by, reason, parked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.Subscription, r.OrderingKey, h.Head.EventID, h.DeadLetterID, r.Action, r.By, r.Reason, h.ParkedAt); err != nil {
		return Released{}, fmt.Errorf("parking: release %s: audit: %w", r.Key, err)
	}
	evs, err := s.events(ctx, tx, r.Key)
	if err != nil {
		return Released{}, err
	}
	out := Released{Head: h}
	state := h.State
	switch {
	case h.State == Draining:
		// Being released: only hand out the trigger again.
	case r.Action == ActionReplay:
		state = Replaying
	case len(evs) == 0:
		if _, err := tx.Exec(ctx, `DELETE FROM parked_keys WHERE subscription = $1 AND ordering_key = $2`, r.Subscription, r.OrderingKey); err != nil {
			return Released{}, fmt.Errorf("parking: release %s: %w", r.Key, err)
		}
		return out, commit(ctx, tx, r.Key)
	default:
		state = Draining
	}
	if _, err := tx.Exec(ctx, `
UPDATE parked_keys SET state = $3, release_action = $4, released_by = $5, release_reason = $6, release_requested_at = now()
 WHERE subscription = $1 AND ordering_key = $2`, r.Subscription, r.OrderingKey, state, r.Action, r.By, r.Reason); err != nil {
		return Released{}, fmt.Errorf("parking: release %s: %w", r.Key, err)
	}
	out.Head.State = state
	// The head triggers a replay; the first parked event a discard. A
	// draining key with nothing parked finishes on any delivery of the
	// key: its head (never applied again while draining) does.
	head := h.Head
	out.Trigger = &head
	if state == Draining && len(evs) > 0 {
		out.Trigger = &evs[0]
	}
	return out, commit(ctx, tx, r.Key)
}

func commit(ctx context.Context, tx pgx.Tx, key Key) error {
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("parking: release %s: commit: %w", key, err)
	}
	return nil
}

// SubscriptionStats is the parked state of one subscription, for the
// parked-keys metric.
type SubscriptionStats struct {
	Subscription string `json:"subscription"`
	Consumer     string `json:"consumer"`
	Keys         int    `json:"parked_keys"`
	Events       int    `json:"parked_events"`
	// OldestAge is the age of the oldest parked key.
	OldestAge time.Duration `json:"oldest_age"`
}

// Stats returns, per subscription with parked keys, how many keys and
// events are parked and the age of the oldest key (the database's clock).
func (s *Store) Stats(ctx context.Context) ([]SubscriptionStats, error) {
	rows, err := s.db.Query(ctx, `
SELECT k.subscription, min(k.consumer), count(*),
       coalesce(sum((SELECT count(*) FROM parked_events e WHERE e.subscription = k.subscription AND e.ordering_key = k.ordering_key)), 0),
       extract(epoch FROM now() - min(k.parked_at))::float8
  FROM parked_keys k GROUP BY k.subscription ORDER BY k.subscription`)
	if err != nil {
		return nil, fmt.Errorf("parking: stats: %w", err)
	}
	stats, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SubscriptionStats, error) {
		var st SubscriptionStats
		var age float64
		err := r.Scan(&st.Subscription, &st.Consumer, &st.Keys, &st.Events, &age)
		st.OldestAge = time.Duration(age * float64(time.Second))
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("parking: stats: %w", err)
	}
	return stats, nil
}
