package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"example.com/platform/shared/postgres"
)

// TopicStatus summarises the pending rows of one topic.
type TopicStatus struct {
	Topic string
	// Pending is the number of rows not yet published.
	Pending int64
	// Failing is the number of pending rows whose last publish failed.
	Failing int64
	// Stuck is the number of pending rows that are failing and older than
	// the stuck threshold (Config.StuckAfter), or parked: each blocks its
	// key until it is published, retried or the operator acts.
	Stuck int64
	// Parked is the number of rows an operator parked (see Park).
	Parked int64
	// OldestAge is how long the oldest pending row has been waiting.
	OldestAge time.Duration
	// LastError is the error of the oldest failing row, if any.
	LastError string
}

const statusSQL = `
SELECT topic,
       count(*),
       count(*) FILTER (WHERE attempts > 0 AND last_error IS NOT NULL),
       count(*) FILTER (WHERE parked_at IS NOT NULL
                           OR (last_error IS NOT NULL AND created_at < clock_timestamp() - make_interval(secs => $1::float8))),
       count(*) FILTER (WHERE parked_at IS NOT NULL),
       (extract(epoch FROM clock_timestamp() - min(created_at)) * 1000000)::bigint,
       coalesce((array_agg(last_error ORDER BY id) FILTER (WHERE last_error IS NOT NULL))[1], '')
FROM outbox
WHERE published_at IS NULL
GROUP BY topic
ORDER BY topic`

// Status returns, per topic with pending rows, how many rows wait, how many
// fail or are stuck (failing for longer than DefaultStuckAfter, or parked)
// and how old the oldest is (for the operator command `outbox status` and
// for alerting). Topics with nothing pending are omitted.
func Status(ctx context.Context, q postgres.Querier) ([]TopicStatus, error) {
	return StatusStuckAfter(ctx, q, DefaultStuckAfter)
}

// StatusStuckAfter is Status with another stuck threshold.
func StatusStuckAfter(ctx context.Context, q postgres.Querier, stuckAfter time.Duration) ([]TopicStatus, error) {
	rows, err := q.Query(ctx, statusSQL, stuckAfter.Seconds())
	if err != nil {
		return nil, fmt.Errorf("outbox: status: %w", err)
	}
	defer rows.Close()
	var out []TopicStatus
	for rows.Next() {
		var (
			s      TopicStatus
			micros int64
		)
		if err := rows.Scan(&s.Topic, &s.Pending, &s.Failing, &s.Stuck, &s.Parked, &micros, &s.LastError); err != nil {
			return nil, fmt.Errorf("outbox: status: %w", err)
		}
		s.OldestAge = time.Duration(micros) * time.Microsecond
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: status: %w", err)
	}
	return out, nil
}

// StuckRow is a pending row that blocks its key: it failed and is older
// than the threshold, or it is parked.
type StuckRow struct {
	ID          int64
	Topic       string
	OrderingKey string
	Attempts    int
	LastError   string
	// Age is how long ago the row was written.
	Age time.Duration
	// RetryIn is how long until its next attempt (zero or negative: due).
	RetryIn time.Duration
	Parked  bool
	// Blocked is the number of later pending rows of its key waiting for it.
	Blocked int64
}

const stuckSQL = `
SELECT o.id, o.topic, o.ordering_key, o.attempts, coalesce(o.last_error, ''),
       (extract(epoch FROM clock_timestamp() - o.created_at) * 1000000)::bigint,
       (extract(epoch FROM o.next_attempt_at - clock_timestamp()) * 1000000)::bigint,
       o.parked_at IS NOT NULL,
       CASE WHEN o.ordering_key = '' THEN 0 ELSE (
           SELECT count(*) FROM outbox l
           WHERE l.published_at IS NULL AND l.topic = o.topic
             AND l.ordering_key = o.ordering_key AND l.id > o.id) END
FROM outbox o
WHERE o.published_at IS NULL
  AND (o.parked_at IS NOT NULL
       OR (o.last_error IS NOT NULL AND o.created_at < clock_timestamp() - make_interval(secs => $1::float8)))
ORDER BY o.id
LIMIT $2`

// Stuck lists up to limit rows that block their key: pending rows that
// failed and are older than olderThan, and parked rows, oldest first.
func Stuck(ctx context.Context, q postgres.Querier, olderThan time.Duration, limit int) ([]StuckRow, error) {
	rows, err := q.Query(ctx, stuckSQL, olderThan.Seconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: stuck rows: %w", err)
	}
	defer rows.Close()
	var out []StuckRow
	for rows.Next() {
		var (
			s            StuckRow
			age, retryIn int64
		)
		if err := rows.Scan(&s.ID, &s.Topic, &s.OrderingKey, &s.Attempts, &s.LastError, &age, &retryIn, &s.Parked, &s.Blocked); err != nil {
			return nil, fmt.Errorf("outbox: stuck rows: %w", err)
		}
		s.Age, s.RetryIn = time.Duration(age)*time.Microsecond, time.Duration(retryIn)*time.Microsecond
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: stuck rows: %w", err)
	}
	return out, nil
}

// ErrNotPending is returned by Retry and Park for an id that is not a
// pending row (unknown, or already published).
var ErrNotPending = errors.New("outbox: no pending row with that id")

// Retry makes the pending row id due now: its backoff ends and, if it was
// parked, it is unparked. The next relay pass publishes it (in its key's
// order: it is still the oldest pending row of its key).
func Retry(ctx context.Context, q postgres.Querier, id int64) error {
	tag, err := q.Exec(ctx, `UPDATE outbox SET next_attempt_at = now(), parked_at = NULL WHERE id = $1 AND published_at IS NULL`, id)
	if err != nil {
		return fmt.Errorf("outbox: retry %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("outbox: retry %d: %w", id, ErrNotPending)
	}
	return nil
}

// Park parks the pending row id: no relay claims it until Retry. A parked
// row stays pending, so it keeps blocking the later rows of its key: parking
// never reorders a key, it only stops the retries (and their log lines)
// while an operator investigates. A publish already in progress when the
// row is parked completes normally.
func Park(ctx context.Context, q postgres.Querier, id int64) error {
	tag, err := q.Exec(ctx, `UPDATE outbox SET parked_at = now() WHERE id = $1 AND published_at IS NULL`, id)
	if err != nil {
		return fmt.Errorf("outbox: park %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("outbox: park %d: %w", id, ErrNotPending)
	}
	return nil
}

// ErrInvalidRetention is returned by PurgePublished for a negative age.
var ErrInvalidRetention = errors.New("outbox: purge age must not be negative")

const purgeBatch = 5000

const purgeSQL = `
DELETE FROM outbox
WHERE id IN (
	SELECT id FROM outbox
	WHERE published_at IS NOT NULL
	  AND published_at < clock_timestamp() - make_interval(secs => $1::float8)
	LIMIT $2)`

// PurgePublished deletes rows published more than olderThan ago and returns
// how many it deleted. It deletes in batches of a few thousand rows, each
// its own statement, so it never holds many locks for long; give it a pool,
// not a transaction. Pending rows are never deleted.
func PurgePublished(ctx context.Context, q postgres.Querier, olderThan time.Duration) (int64, error) {
	if olderThan < 0 {
		return 0, ErrInvalidRetention
	}
	var total int64
	for {
		tag, err := q.Exec(ctx, purgeSQL, olderThan.Seconds(), purgeBatch)
		if err != nil {
			return total, fmt.Errorf("outbox: purge published: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < purgeBatch {
			return total, nil
		}
	}
}

// Status is StatusStuckAfter on the relay's pool with its StuckAfter.
func (r *Relay) Status(ctx context.Context) ([]TopicStatus, error) {
	return StatusStuckAfter(ctx, r.cfg.Pool, r.cfg.StuckAfter)
}

// PurgePublished is PurgePublished on the relay's pool.
func (r *Relay) PurgePublished(ctx context.Context, olderThan time.Duration) (int64, error) {
	return PurgePublished(ctx, r.cfg.Pool, olderThan)
}
