package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/messaging"
)

// Defaults for Config's zero values.
const (
	DefaultBatchSize       = 100
	DefaultConcurrency     = 8
	DefaultPublishTimeout  = 30 * time.Second
	DefaultMaxRetryBackoff = 5 * time.Minute
)

// Configuration errors returned by Config.Validate and NewRelay.
var (
	ErrNoPool             = errors.New("outbox: Config.Pool is required")
	ErrNoPublisher        = errors.New("outbox: Config.Publisher is required")
	ErrInvalidBatchSize   = errors.New("outbox: BatchSize must not be negative")
	ErrInvalidConcurrency = errors.New("outbox: Concurrency must not be negative")
	ErrInvalidTimeout     = errors.New("outbox: PublishTimeout must not be negative")
	ErrInvalidBackoff     = errors.New("outbox: RetryBackoff and MaxRetryBackoff must not be negative")
	ErrInvalidInterval    = errors.New("outbox: Run interval must be positive")
)

// Config configures a Relay. Zero values of the optional fields are
// replaced by the defaults above.
//
// There is one claiming strategy, row locks (see the package
// documentation): a pass holds a transaction, and with it one pooled
// connection, while it publishes.
type Config struct {
	// Pool is the database holding the outbox table. Required.
	Pool *pgxpool.Pool
	// Publisher publishes the rows. Required. It must be safe for
	// concurrent use; with message ordering (messaging.PubSub) it must
	// accept the next publish of a key after a failed one.
	Publisher messaging.Publisher
	// Logger receives a warning per failed publish and per failed pass.
	// Default slog.Default().
	Logger *slog.Logger
	// BatchSize is the most rows one pass publishes. Default 100.
	BatchSize int
	// Concurrency is how many ordering keys (each sequentially) and
	// key-less rows a pass publishes at once. Default 8.
	Concurrency int
	// PublishTimeout bounds one Publish call. Default 30s.
	PublishTimeout time.Duration
	// RetryBackoff delays the retry of a failed row (and so its whole
	// key) by PublishPending: RetryBackoff * 2^(attempts-1), capped at
	// MaxRetryBackoff. Zero (the default) retries on the next pass, which
	// for Run is one interval later.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the delay. Default 5m, or RetryBackoff if
	// that is larger.
	MaxRetryBackoff time.Duration
}

// Validate reports the first configuration error as one of the Err*
// sentinels.
func (c Config) Validate() error {
	switch {
	case c.Pool == nil:
		return ErrNoPool
	case c.Publisher == nil:
		return ErrNoPublisher
	case c.BatchSize < 0:
		return ErrInvalidBatchSize
	case c.Concurrency < 0:
		return ErrInvalidConcurrency
	case c.PublishTimeout < 0:
		return ErrInvalidTimeout
	case c.RetryBackoff < 0 || c.MaxRetryBackoff < 0:
		return ErrInvalidBackoff
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = max(DefaultMaxRetryBackoff, c.RetryBackoff)
	}
}

// Relay publishes outbox rows. It is safe for concurrent use, and any
// number of Relays, in any number of processes, may work on one database.
type Relay struct {
	cfg Config
}

// NewRelay validates cfg and returns a Relay.
func NewRelay(cfg Config) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Relay{cfg: cfg}, nil
}

// Stats counts what one pass did.
type Stats struct {
	// Claimed is the number of rows the pass owned (fetched under the
	// lock of their key's oldest pending row).
	Claimed int
	// Published rows were acknowledged by the publisher and marked.
	Published int
	// Failed rows were attempted and failed; each pauses its key.
	Failed int
	// Held rows were claimed but not attempted, because an earlier row of
	// their key failed in this pass or the context ended.
	Held int
	// Skipped counts the ids given to PublishAfterCommit that it left to
	// the relay: not the oldest pending row of their key, owned by
	// another relay, already published, or beyond the batch.
	Skipped int
}

// claimPendingSQL claims the oldest pending row of up to $1 ordering keys
// and key-less rows, skipping keys another pass owns. A row of a key
// qualifies only if no older row of its key is pending, so while another
// transaction holds a key's oldest row, no row of that key qualifies.
const claimPendingSQL = `
SELECT o.id, o.topic, o.ordering_key, 9223372036854775807::bigint
FROM outbox o
WHERE o.published_at IS NULL
  AND o.next_attempt_at <= now()
  AND (o.ordering_key = '' OR NOT EXISTS (
        SELECT 1 FROM outbox p
        WHERE p.published_at IS NULL AND p.topic = o.topic
          AND p.ordering_key = o.ordering_key AND p.id < o.id))
ORDER BY o.id
LIMIT $1
FOR UPDATE SKIP LOCKED`

// claimGivenSQL claims those of the ids $1 that are the oldest pending row
// of their key (or key-less), with the largest given id of that key, so the
// pass publishes the given rows of the key and nothing newer.
const claimGivenSQL = `
SELECT o.id, o.topic, o.ordering_key,
       (SELECT max(g.id) FROM outbox g
        WHERE g.id = ANY($1::bigint[]) AND g.topic = o.topic AND g.ordering_key = o.ordering_key)
FROM outbox o
WHERE o.id = ANY($1::bigint[])
  AND o.published_at IS NULL
  AND (o.ordering_key = '' OR NOT EXISTS (
        SELECT 1 FROM outbox p
        WHERE p.published_at IS NULL AND p.topic = o.topic
          AND p.ordering_key = o.ordering_key AND p.id < o.id))
ORDER BY o.id
FOR UPDATE SKIP LOCKED`

// fetchSQL reads the claimed key-less rows ($1) and, for each claimed key
// ($2 topic, $3 ordering key), its pending rows up to id $4, oldest first,
// at most $5 rows in all.
const fetchSQL = `
SELECT id, topic, ordering_key, data, attributes::text
FROM (
	SELECT o.id, o.topic, o.ordering_key, o.data, o.attributes
	FROM outbox o
	WHERE o.id = ANY($1::bigint[]) AND o.published_at IS NULL
	UNION ALL
	SELECT r.id, r.topic, r.ordering_key, r.data, r.attributes
	FROM unnest($2::text[], $3::text[], $4::bigint[]) AS c(topic, ordering_key, max_id)
	CROSS JOIN LATERAL (
		SELECT x.id, x.topic, x.ordering_key, x.data, x.attributes
		FROM outbox x
		WHERE x.published_at IS NULL AND x.topic = c.topic
		  AND x.ordering_key = c.ordering_key AND x.id <= c.max_id
		ORDER BY x.id
		LIMIT $5) AS r
) AS rows
ORDER BY id
LIMIT $5`

const markPublishedSQL = `
UPDATE outbox SET published_at = clock_timestamp(), attempts = attempts + 1, last_error = NULL
WHERE id = ANY($1::bigint[])`

const markFailedSQL = `
UPDATE outbox AS o
SET attempts = o.attempts + 1,
    last_error = f.err,
    next_attempt_at = clock_timestamp() + make_interval(secs => least($4::float8, $3::float8 * power(2, o.attempts)))
FROM unnest($1::bigint[], $2::text[]) AS f(id, err)
WHERE o.id = f.id`

// PublishPending does one relay pass: it claims up to BatchSize pending
// rows whose key no other pass owns, publishes them (keys in parallel, the
// rows of a key one after the other in id order), marks the acknowledged
// rows published and records the failures, all in one transaction. A
// failed row pauses its key for the rest of the pass; the next pass (after
// RetryBackoff, if set) resumes from it. Rows of keys owned by another
// pass are left alone. A publish failure is not an error of the pass: it is
// counted in Stats and logged. The error reports a database failure; if it
// happens after publishing (the marks did not commit), the published rows
// will be published again. The marks are written even when ctx ends during
// the pass.
func (r *Relay) PublishPending(ctx context.Context) (Stats, error) {
	st, _, err := r.pass(ctx, "publish pending", r.cfg.BatchSize, claimPendingSQL, r.cfg.BatchSize)
	return st, err
}

// PublishAfterCommit publishes the rows ids, just written by the caller
// with Write in a transaction that has committed, without waiting for the
// relay. It follows the relay's rules: a key is published only if the
// oldest pending row of that key is one of ids and no other pass owns it,
// so it never jumps ahead of an older unpublished row; a failure pauses the
// key and leaves it to the relay. Rows it does not publish are counted in
// Stats.Skipped or Stats.Held and the relay publishes them later. Pending
// rows of a key that fall between the given ids (written by another
// transaction) are published with them, in order.
func (r *Relay) PublishAfterCommit(ctx context.Context, ids ...int64) (Stats, error) {
	if len(ids) == 0 {
		return Stats{}, nil
	}
	limit := max(r.cfg.BatchSize, len(ids))
	st, claimed, err := r.pass(ctx, "publish after commit", limit, claimGivenSQL, ids)
	given := make(map[int64]bool, len(ids))
	for _, id := range ids {
		given[id] = true
	}
	for _, id := range claimed {
		delete(given, id)
	}
	st.Skipped = len(given)
	return st, err
}

type row struct {
	id    int64
	topic string
	key   string
	data  []byte
	attrs map[string]string
}

type claim struct {
	keylessIDs []int64
	topics     []string
	keys       []string
	maxIDs     []int64
}

type failure struct {
	row row
	err error
}

// pass runs one claim-publish-mark transaction. claimSQL takes claimArg as
// $1 and returns (id, topic, ordering_key, max id to publish of that key).
func (r *Relay) pass(ctx context.Context, what string, limit int, claimSQL string, claimArg any) (st Stats, claimed []int64, err error) {
	tx, err := r.cfg.Pool.Begin(ctx)
	if err != nil {
		return st, nil, fmt.Errorf("outbox: %s: begin: %w", what, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op

	c, err := claimRows(ctx, tx, claimSQL, claimArg)
	if err != nil {
		return st, nil, fmt.Errorf("outbox: %s: claim: %w", what, err)
	}
	if len(c.keylessIDs) == 0 && len(c.topics) == 0 {
		if err := tx.Commit(ctx); err != nil {
			return st, nil, fmt.Errorf("outbox: %s: commit: %w", what, err)
		}
		return st, nil, nil
	}
	rows, err := fetchRows(ctx, tx, c, limit)
	if err != nil {
		return st, nil, fmt.Errorf("outbox: %s: fetch: %w", what, err)
	}
	st.Claimed = len(rows)
	for _, rw := range rows {
		claimed = append(claimed, rw.id)
	}

	published, failed, held := r.publish(ctx, rows)
	st.Published, st.Failed, st.Held = len(published), len(failed), held

	// Record the outcome even if ctx ended: the messages are out.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if len(published) > 0 {
		if _, err := tx.Exec(mctx, markPublishedSQL, published); err != nil {
			return st, claimed, fmt.Errorf("outbox: %s: mark %d published (they will be published again): %w", what, len(published), err)
		}
	}
	if len(failed) > 0 {
		ids, msgs := make([]int64, len(failed)), make([]string, len(failed))
		for i, f := range failed {
			ids[i], msgs[i] = f.row.id, truncate(f.err.Error(), 2000)
		}
		if _, err := tx.Exec(mctx, markFailedSQL, ids, msgs, r.cfg.RetryBackoff.Seconds(), r.cfg.MaxRetryBackoff.Seconds()); err != nil {
			return st, claimed, fmt.Errorf("outbox: %s: record %d failures: %w", what, len(failed), err)
		}
	}
	if err := tx.Commit(mctx); err != nil {
		return st, claimed, fmt.Errorf("outbox: %s: commit (%d rows will be published again): %w", what, len(published), err)
	}
	return st, claimed, nil
}

func claimRows(ctx context.Context, tx pgx.Tx, claimSQL string, arg any) (claim, error) {
	var c claim
	rows, err := tx.Query(ctx, claimSQL, arg)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, maxID  int64
			topic, key string
		)
		if err := rows.Scan(&id, &topic, &key, &maxID); err != nil {
			return c, err
		}
		if key == "" {
			c.keylessIDs = append(c.keylessIDs, id)
			continue
		}
		c.topics = append(c.topics, topic)
		c.keys = append(c.keys, key)
		c.maxIDs = append(c.maxIDs, maxID)
	}
	return c, rows.Err()
}

func fetchRows(ctx context.Context, tx pgx.Tx, c claim, limit int) ([]row, error) {
	rs, err := tx.Query(ctx, fetchSQL, nonNilIDs(c.keylessIDs), c.topics, c.keys, c.maxIDs, limit)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var (
			rw    row
			attrs string
		)
		if err := rs.Scan(&rw.id, &rw.topic, &rw.key, &rw.data, &attrs); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(attrs), &rw.attrs); err != nil {
			return nil, fmt.Errorf("row %d: decode attributes: %w", rw.id, err)
		}
		if len(rw.attrs) == 0 {
			rw.attrs = nil
		}
		out = append(out, rw)
	}
	return out, rs.Err()
}

// publish publishes rows: each ordering key is a lane published in id
// order, stopping at its first failure; each key-less row is a lane of its
// own. Up to Concurrency lanes run at once.
func (r *Relay) publish(ctx context.Context, rows []row) (published []int64, failed []failure, held int) {
	type laneKey struct{ topic, key string }
	var lanes [][]row
	index := map[laneKey]int{}
	for _, rw := range rows { // rows are in id order
		if rw.key == "" {
			lanes = append(lanes, []row{rw})
			continue
		}
		k := laneKey{rw.topic, rw.key}
		i, ok := index[k]
		if !ok {
			i = len(lanes)
			index[k] = i
			lanes = append(lanes, nil)
		}
		lanes[i] = append(lanes[i], rw)
	}

	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next = make(chan []row)
	)
	workers := min(r.cfg.Concurrency, len(lanes))
	for range workers {
		wg.Go(func() {
			for lane := range next {
				ok, fail, h := r.publishLane(ctx, lane)
				mu.Lock()
				published = append(published, ok...)
				if fail != nil {
					failed = append(failed, *fail)
				}
				held += h
				mu.Unlock()
			}
		})
	}
	for i, lane := range lanes {
		if ctx.Err() != nil {
			for _, l := range lanes[i:] {
				held += len(l)
			}
			break
		}
		next <- lane
	}
	close(next)
	wg.Wait()
	slices.Sort(published)
	slices.SortFunc(failed, func(a, b failure) int { return cmp.Compare(a.row.id, b.row.id) })
	return published, failed, held
}

func (r *Relay) publishLane(ctx context.Context, lane []row) (published []int64, fail *failure, held int) {
	for i, rw := range lane {
		if ctx.Err() != nil {
			return published, nil, len(lane) - i
		}
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
		_, err := r.cfg.Publisher.Publish(pctx, rw.topic, messaging.Message{Data: rw.data, Attributes: rw.attrs, OrderingKey: rw.key})
		cancel()
		if err == nil {
			published = append(published, rw.id)
			continue
		}
		if ctx.Err() != nil {
			// The caller gave up; the row was not at fault.
			return published, nil, len(lane) - i
		}
		r.cfg.Logger.WarnContext(ctx, "outbox: publish failed; ordering key paused until the next pass",
			slog.Int64("outbox_id", rw.id), slog.String("topic", rw.topic), slog.String("ordering_key", rw.key),
			slog.Int("held", len(lane)-i-1), slog.Any("error", err))
		return published, &failure{row: rw, err: err}, len(lane) - i - 1
	}
	return published, nil, 0
}

// Run runs PublishPending every interval until ctx ends, then returns nil.
// A pass that filled its batch and made progress is followed at once by
// another. Pass errors are logged, not returned. It returns
// ErrInvalidInterval for a non-positive interval.
func (r *Relay) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return ErrInvalidInterval
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		for ctx.Err() == nil {
			st, err := r.PublishPending(ctx)
			if err != nil {
				if ctx.Err() == nil {
					r.cfg.Logger.WarnContext(ctx, "outbox: relay pass failed", slog.Any("error", err))
				}
				break
			}
			if st.Published == 0 || st.Claimed < r.cfg.BatchSize {
				break
			}
		}
		timer.Reset(interval)
	}
}

// truncate shortens an error message to at most n bytes of valid UTF-8
// without NUL, storable as text.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
}

func nonNilIDs(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}
