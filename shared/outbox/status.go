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
	// OldestAge is how long the oldest pending row has been waiting.
	OldestAge time.Duration
	// LastError is the error of the oldest failing row, if any.
	LastError string
}

const statusSQL = `
SELECT topic,
       count(*),
       count(*) FILTER (WHERE attempts > 0 AND last_error IS NOT NULL),
       (extract(epoch FROM clock_timestamp() - min(created_at)) * 1000000)::bigint,
       coalesce((array_agg(last_error ORDER BY id) FILTER (WHERE last_error IS NOT NULL))[1], '')
FROM outbox
WHERE published_at IS NULL
GROUP BY topic
ORDER BY topic`

// Status returns, per topic with pending rows, how many rows wait and how
// old the oldest is (for the operator command `outbox status` and for
// alerting). Topics with nothing pending are omitted.
func Status(ctx context.Context, q postgres.Querier) ([]TopicStatus, error) {
	rows, err := q.Query(ctx, statusSQL)
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
		if err := rows.Scan(&s.Topic, &s.Pending, &s.Failing, &micros, &s.LastError); err != nil {
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

// Status is Status on the relay's pool.
func (r *Relay) Status(ctx context.Context) ([]TopicStatus, error) {
	return Status(ctx, r.cfg.Pool)
}

// PurgePublished is PurgePublished on the relay's pool.
func (r *Relay) PurgePublished(ctx context.Context, olderThan time.Duration) (int64, error) {
	return PurgePublished(ctx, r.cfg.Pool, olderThan)
}
