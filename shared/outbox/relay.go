package outbox

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	DefaultBatchSize        = 1000
	DefaultConcurrency      = 32
	DefaultPublishTimeout   = 30 * time.Second
	DefaultRetryBackoff     = time.Second
	DefaultMaxRetryBackoff  = 5 * time.Minute
	DefaultMaxInFlight      = 4000
	DefaultMaxInFlightBytes = 32 << 20
	DefaultLease            = time.Minute
	DefaultStuckAfter       = 15 * time.Minute
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
	ErrInvalidInFlight    = errors.New("outbox: MaxInFlight and MaxInFlightBytes must not be negative")
	ErrInvalidLease       = errors.New("outbox: Lease and StuckAfter must not be negative")
)

// Config configures a Relay. Zero values of the optional fields are
// replaced by the defaults above.
//
// A relay claims rows with short statements that lease them and commit at
// once (see the package documentation); no transaction stays open while
// it publishes.
type Config struct {
	// Pool is the database holding the outbox table. Required.
	Pool *pgxpool.Pool
	// Publisher publishes the rows. Required. If it implements
	// messaging.AsyncPublisher (messaging.PubSub does), many messages are
	// in flight at once through it and it keeps per-key order itself;
	// otherwise the relay publishes the rows of a key one after the other
	// and keys in parallel (see messaging.Async). It must be safe for
	// concurrent use.
	Publisher messaging.Publisher
	// Logger receives a warning per failed publish, per stuck row and per
	// failed database statement. Default slog.Default().
	Logger *slog.Logger
	// BatchSize is the most rows one claim takes (and so the most rows
	// PublishPending and PublishAfterCommit publish). Default 1000. A claim
	// also stops at MaxInFlightBytes of messages.
	BatchSize int
	// Concurrency bounds the Publish calls in progress at once when
	// Publisher is not a messaging.AsyncPublisher. Default 32.
	Concurrency int
	// PublishTimeout bounds one Publish call of a Publisher that is not a
	// messaging.AsyncPublisher (an AsyncPublisher applies its own, for
	// Pub/Sub the client's PublishSettings.Timeout). Default 30s.
	PublishTimeout time.Duration
	// MaxInFlight and MaxInFlightBytes bound the messages (and their bytes:
	// data, attributes and ordering key) handed to the publisher and not
	// yet acknowledged. Defaults 4000 and 32 MiB. A message larger than
	// MaxInFlightBytes is sent alone. The rows of a claim not yet handed
	// over hold at most MaxInFlightBytes more (plus one row).
	MaxInFlight      int
	MaxInFlightBytes int
	// RetryBackoff delays the retry of a failed row (and so the rest of its
	// key, never other keys): RetryBackoff * 2^(attempts-1), capped at
	// MaxRetryBackoff. Default 1s.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the delay. Default 5m, or RetryBackoff if
	// that is larger.
	MaxRetryBackoff time.Duration
	// Lease is how long claimed rows stay reserved to this relay. A
	// relay renews the lease of rows it still publishes every Lease/3, so
	// it only expires when the relay died or lost its database; then
	// another relay may claim the rows again. Default 1m.
	Lease time.Duration
	// StuckAfter is the age past which a row that fails to publish (or is
	// parked) is reported as stuck: a warning "outbox: row stuck" per
	// failed attempt, and TopicStatus.Stuck. Default 15m.
	StuckAfter time.Duration
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
	case c.MaxInFlight < 0 || c.MaxInFlightBytes < 0:
		return ErrInvalidInFlight
	case c.Lease < 0 || c.StuckAfter < 0:
		return ErrInvalidLease
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
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = max(DefaultMaxRetryBackoff, c.RetryBackoff)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxInFlightBytes == 0 {
		c.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.StuckAfter == 0 {
		c.StuckAfter = DefaultStuckAfter
	}
}

// Relay publishes outbox rows. It is safe for concurrent use, and any
// number of Relays, in any number of processes, may work on one database.
type Relay struct {
	cfg    Config
	pub    messaging.AsyncPublisher
	native bool // cfg.Publisher is itself an AsyncPublisher
	budget *budget
}

// NewRelay validates cfg and returns a Relay.
func NewRelay(cfg Config) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	p := cfg.Publisher
	_, native := p.(messaging.AsyncPublisher)
	if !native {
		inner, timeout := p, cfg.PublishTimeout
		p = messaging.PublisherFunc(func(ctx context.Context, topic string, m messaging.Message) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return inner.Publish(ctx, topic, m)
		})
	}
	return &Relay{
		cfg:    cfg,
		native: native,
		pub:    messaging.Async(p, cfg.Concurrency),
		budget: newBudget(cfg.MaxInFlight, cfg.MaxInFlightBytes),
	}, nil
}

// Stats counts what a call did.
type Stats struct {
	// Claimed is the number of rows leased to this call.
	Claimed int
	// Published rows were acknowledged by the publisher and marked.
	Published int
	// Failed rows were attempted and failed; each pauses its key until
	// its retry.
	Failed int
	// Held rows were claimed but not published, because an earlier row of
	// their key failed or the context ended; they are released at once.
	Held int
	// Skipped counts the ids given to PublishAfterCommit that it left to
	// the relay: not the oldest pending row of their key, leased by
	// another relay, already published, or beyond the batch.
	Skipped int
}

// The claim statements lease the heads of keys in one autocommit
// statement. A candidate head is a pending row that is not parked, not in
// backoff, not under a live lease and the oldest pending row of its key
// (key-less rows are all heads). Each head brings its key's later pending
// rows in id order, up to the key's first parked row; heads are taken
// oldest first, rows in (head, id) order, $3 rows in all. The heads
// actually used are locked FOR UPDATE SKIP LOCKED and leased, so of two
// relays claiming at once only one gets a key: the other skips the locked
// head or, if the first committed already, finds its lease on re-check.
//
// Leasing the head is enough to own the whole key: while the head is
// pending, no later row of its key is a head, so nobody else can claim
// them. The owner therefore marks the later rows published as their
// acknowledgements arrive, but the head only when it settles the claim,
// which frees the key.
//
// The claim also stops once the rows reach $5 bytes (MaxInFlightBytes;
// at least one row), so claimed rows waiting to be handed to the publisher
// never hold more than that in memory.
//
// $1 token, $2 lease seconds, $3 limit, $4 the ids (claimGivenSQL only,
// NULL for claimPendingSQL), $5 the byte limit.
//
// Asynchronous commit: every statement of the relay's own bookkeeping
// (claims and leases, marks, settles, renewals) sets synchronous_commit off
// for its transaction (set_config(..., true) in the WHERE clause of each
// write, so it is in force whenever the statement writes), and does not
// wait for its WAL flush. A server crash can forget the last fraction of a
// second of them; the rows are then claimable again and published again: a
// duplicate, which consumers absorb, never a loss or a reordering (WAL is
// serial: a key's later mark is never durable while an earlier one is
// lost). The outbox rows themselves are written in the caller's
// transaction, which commits synchronously.
const claimPendingSQL = `
WITH picked0 AS (
	SELECT c.id AS head, r.id, r.size
	FROM (
		SELECT o.id, o.topic, o.ordering_key, 9223372036854775807::bigint AS max_id
		FROM outbox o
		WHERE o.published_at IS NULL
		  AND o.next_attempt_at <= now()
		  AND o.parked_at IS NULL
		  AND (o.lease_until IS NULL OR o.lease_until < now())
		  AND (o.ordering_key = '' OR NOT EXISTS (
		        SELECT 1 FROM outbox p
		        WHERE p.published_at IS NULL AND p.topic = o.topic
		          AND p.ordering_key = o.ordering_key AND p.id < o.id))
		  AND $4::bigint[] IS NULL
		ORDER BY o.id
		LIMIT $3) AS c` + claimTailSQL

const claimGivenSQL = `
WITH picked0 AS (
	SELECT c.id AS head, r.id, r.size
	FROM (
		SELECT o.id, o.topic, o.ordering_key,
		       (SELECT max(g.id) FROM outbox g
		        WHERE g.id = ANY($4::bigint[]) AND g.topic = o.topic AND g.ordering_key = o.ordering_key) AS max_id
		FROM outbox o
		WHERE o.id = ANY($4::bigint[])
		  AND o.published_at IS NULL
		  AND o.parked_at IS NULL
		  AND (o.lease_until IS NULL OR o.lease_until < now())
		  AND (o.ordering_key = '' OR NOT EXISTS (
		        SELECT 1 FROM outbox p
		        WHERE p.published_at IS NULL AND p.topic = o.topic
		          AND p.ordering_key = o.ordering_key AND p.id < o.id))
		ORDER BY o.id
		LIMIT $3) AS c` + claimTailSQL

const claimTailSQL = `
	CROSS JOIN LATERAL (
		SELECT c.id AS id, (SELECT octet_length(k.data) + octet_length(k.attributes::text) FROM outbox k WHERE k.id = c.id) AS size
		WHERE c.ordering_key = ''
		UNION ALL
		(SELECT x.id, octet_length(x.data) + octet_length(x.attributes::text) + octet_length(x.ordering_key) FROM outbox x
		 WHERE c.ordering_key <> '' AND x.published_at IS NULL
		   AND x.topic = c.topic AND x.ordering_key = c.ordering_key
		   AND x.id >= c.id AND x.id <= c.max_id
		   AND x.id < coalesce((
		         SELECT min(z.id) FROM outbox z
		         WHERE z.parked_at IS NOT NULL AND z.published_at IS NULL
		           AND z.topic = c.topic AND z.ordering_key = c.ordering_key), 9223372036854775807)
		 ORDER BY x.id
		 LIMIT $3)) AS r
	ORDER BY c.id, r.id
	LIMIT $3
), picked AS MATERIALIZED (
	SELECT head, id FROM (
		SELECT head, id, size, sum(size) OVER (ORDER BY head, id) AS total FROM picked0) AS t
	WHERE total - size < $5::bigint
), locked AS (
	SELECT o.id FROM outbox o
	WHERE o.id IN (SELECT head FROM picked)
	  AND o.published_at IS NULL
	  AND (o.lease_until IS NULL OR o.lease_until < now())
	FOR UPDATE SKIP LOCKED
), leased AS (
	UPDATE outbox u
	SET claimed_by = $1::text, lease_until = now() + make_interval(secs => $2::float8)
	FROM locked l
	WHERE u.id = l.id AND set_config('synchronous_commit', 'off', true) IS NOT NULL
	RETURNING u.id
)
SELECT x.id, x.topic, x.ordering_key, x.data, x.attributes::text, x.id = p.head
FROM picked p
JOIN leased l ON l.id = p.head
JOIN outbox x ON x.id = p.id
ORDER BY x.id`

// claimOneSQL is claimGivenSQL for one id ($3): the row is claimed, as
// the head of its key, when it is pending, not parked, not leased, and no
// earlier row of its key is pending. $1 token, $2 lease seconds.
const claimOneSQL = `
WITH locked AS (
	SELECT o.id FROM outbox o
	WHERE o.id = $3::bigint
	  AND o.published_at IS NULL
	  AND o.parked_at IS NULL
	  AND (o.lease_until IS NULL OR o.lease_until < now())
	  AND (o.ordering_key = '' OR NOT EXISTS (
	        SELECT 1 FROM outbox p
	        WHERE p.published_at IS NULL AND p.topic = o.topic
	          AND p.ordering_key = o.ordering_key AND p.id < o.id))
	FOR UPDATE SKIP LOCKED
)
UPDATE outbox u
SET claimed_by = $1::text, lease_until = now() + make_interval(secs => $2::float8)
FROM locked l
WHERE u.id = l.id AND set_config('synchronous_commit', 'off', true) IS NOT NULL
RETURNING u.id, u.topic, u.ordering_key, u.data, u.attributes::text, true`

// markPublishedSQL records acknowledged rows that are not the head of
// their claim. It does not check the lease: a row that was acknowledged is
// published, whoever holds it now.
const markPublishedSQL = `
UPDATE outbox
SET published_at = clock_timestamp(), attempts = attempts + 1, last_error = NULL
WHERE id = ANY($1::bigint[]) AND published_at IS NULL AND set_config('synchronous_commit', 'off', true) IS NOT NULL`

// settleSQL ends a claim $1: it marks its acknowledged heads ($7)
// published, records the failed rows ($2 ids, $3 errors) with their
// backoff, releases its other heads ($4), and returns the failed rows with
// their age. Every head leaves its lease, which frees its key.
const settleSQL = `
WITH published AS (
	UPDATE outbox
	SET published_at = clock_timestamp(), attempts = attempts + 1, last_error = NULL,
	    claimed_by = NULL, lease_until = NULL
	WHERE id = ANY($7::bigint[]) AND published_at IS NULL AND set_config('synchronous_commit', 'off', true) IS NOT NULL
	RETURNING 1
), failed AS (
	UPDATE outbox AS o
	SET attempts = o.attempts + 1,
	    last_error = f.err,
	    next_attempt_at = clock_timestamp() + make_interval(secs => least($6::float8, $5::float8 * power(2, o.attempts))),
	    claimed_by = NULL, lease_until = NULL
	FROM unnest($2::bigint[], $3::text[]) AS f(id, err)
	WHERE o.id = f.id AND o.published_at IS NULL AND set_config('synchronous_commit', 'off', true) IS NOT NULL
	RETURNING o.id, o.topic, o.ordering_key, o.attempts,
	          extract(epoch FROM clock_timestamp() - o.created_at)::float8 AS age,
	          extract(epoch FROM o.next_attempt_at - clock_timestamp())::float8 AS retry_in
), released AS (
	UPDATE outbox
	SET claimed_by = NULL, lease_until = NULL
	WHERE id = ANY($4::bigint[]) AND claimed_by = $1 AND published_at IS NULL AND set_config('synchronous_commit', 'off', true) IS NOT NULL
	RETURNING 1
)
SELECT id, topic, ordering_key, attempts, age, retry_in,
       (SELECT count(*) FROM published) + (SELECT count(*) FROM released)
FROM failed`

// settleHeadsSQL ends a claim whose heads ($1) were all published: the
// "published" part of settleSQL alone.
const settleHeadsSQL = `
UPDATE outbox
SET published_at = clock_timestamp(), attempts = attempts + 1, last_error = NULL,
    claimed_by = NULL, lease_until = NULL
WHERE id = ANY($1::bigint[]) AND published_at IS NULL
  AND set_config('synchronous_commit', 'off', true) IS NOT NULL`

// renewSQL extends the lease of the heads ($2) of claim $1.
const renewSQL = `
UPDATE outbox SET lease_until = now() + make_interval(secs => $3::float8)
WHERE id = ANY($2::bigint[]) AND claimed_by = $1 AND published_at IS NULL AND set_config('synchronous_commit', 'off', true) IS NOT NULL`

// PublishPending claims up to BatchSize pending rows whose key no other
// relay holds, publishes them (many in flight at once, each key in id
// order), records each acknowledgement as it arrives (in batches) and,
// once every result is in, records the failures with their backoff and
// releases what it did not publish. A failed row pauses the rest of its
// key until its retry (RetryBackoff); other keys carry on. A publish
// failure is not an error: it is counted in Stats and logged. The error
// reports a database failure; rows whose mark was lost are published
// again after their lease expires. No transaction is open while
// publishing. The outcome of messages already handed to the publisher is
// recorded even when ctx ends.
func (r *Relay) PublishPending(ctx context.Context) (Stats, error) {
	st, _, err := r.drain(ctx, "publish pending", true, func(ctx context.Context, token string) ([]row, error) {
		return r.claim(ctx, claimPendingSQL, token)
	})
	return st, err
}

// Drain publishes like PublishPending, claim after claim, keeping up to
// MaxInFlight messages in flight, until no row can be claimed (everything
// is published, in backoff, parked or held by another relay) or ctx ends.
func (r *Relay) Drain(ctx context.Context) (Stats, error) {
	st, _, err := r.drain(ctx, "drain", false, func(ctx context.Context, token string) ([]row, error) {
		return r.claim(ctx, claimPendingSQL, token)
	})
	return st, err
}

// PublishAfterCommit publishes the rows ids, just written by the caller
// with Write in a transaction that has committed, without waiting for the
// relay. It follows the relay's rules: a key is published only if the
// oldest pending row of that key is one of ids and no other relay holds
// it, so it never jumps ahead of an older unpublished row; a failure pauses
// the key and leaves it to the relay. Rows it does not publish are counted
// in Stats.Skipped or Stats.Held and the relay publishes them later.
// Pending rows of a key that fall between the given ids (written by
// another transaction) are published with them, in order.
func (r *Relay) PublishAfterCommit(ctx context.Context, ids ...int64) (Stats, error) {
	if len(ids) == 0 {
		return Stats{}, nil
	}
	limit := max(r.cfg.BatchSize, len(ids))
	claim := func(ctx context.Context, token string) ([]row, error) {
		return r.claimN(ctx, claimGivenSQL, token, limit, ids)
	}
	if len(ids) == 1 {
		// The common case (one event, one message): the general claim's
		// key walk, size window and head bookkeeping reduce to this row.
		claim = func(ctx context.Context, token string) ([]row, error) {
			return r.scanClaim(r.cfg.Pool.Query(ctx, claimOneSQL, token, r.cfg.Lease.Seconds(), ids[0]))
		}
	}
	st, claimed, err := r.drain(ctx, "publish after commit", true, claim)
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
	head  bool  // the leased head of its key in the claim
	bad   error // the row cannot be turned into a message (its publish fails)
}

func (rw row) size() int {
	n := len(rw.data) + len(rw.key)
	for k, v := range rw.attrs {
		n += len(k) + len(v)
	}
	return n
}

func (r *Relay) claim(ctx context.Context, sql, token string) ([]row, error) {
	return r.claimN(ctx, sql, token, r.cfg.BatchSize, nil)
}

func (r *Relay) claimN(ctx context.Context, sql, token string, limit int, ids []int64) ([]row, error) {
	return r.scanClaim(r.cfg.Pool.Query(ctx, sql, token, r.cfg.Lease.Seconds(), limit, ids, int64(r.cfg.MaxInFlightBytes)))
}

// scanClaim reads the rows a claim statement returned.
func (r *Relay) scanClaim(rs pgx.Rows, err error) ([]row, error) {
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
		if err := rs.Scan(&rw.id, &rw.topic, &rw.key, &rw.data, &attrs, &rw.head); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(attrs), &rw.attrs); err != nil {
			// Not Write's doing; fail this row (it backs off and shows as
			// stuck), not the whole claim.
			rw.bad = fmt.Errorf("outbox: row %d: decode attributes: %w", rw.id, err)
		}
		if len(rw.attrs) == 0 {
			rw.attrs = nil
		}
		out = append(out, rw)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

type keyID struct{ topic, key string }

type failure struct {
	row       row
	err       error
	attempted bool // false: the caller gave up; not recorded as an attempt
}

// claimBatch is the state of one claim while its rows are published.
type claimBatch struct {
	token       string
	rows        []row
	leaseEnd    time.Time
	outstanding int  // handed to the publisher, result not in yet
	submitted   bool // every row handed over or held
	published   map[int64]bool
	failed      map[keyID]failure // per key, the oldest failed row
	keyless     []failure
	pausedKeys  map[keyID]bool // keys with any failed result: resume them
}

// engine publishes claims and records their outcome. Acknowledgements are
// queued under mu and written by one recorder goroutine in batches; a
// claim is settled (failures, release) by the recorder after the marks of
// all its acknowledged rows were written.
type engine struct {
	r    *Relay
	ctx  context.Context
	what string

	mu      sync.Mutex
	st      Stats
	err     error
	marks   []int64
	settle  []*claimBatch
	active  map[*claimBatch]bool
	wake    chan struct{} // recorder has work
	settled chan struct{} // a claim was settled
	stop    chan struct{}
	done    chan struct{}
}

func (r *Relay) drain(ctx context.Context, what string, once bool, claim func(context.Context, string) ([]row, error)) (Stats, []int64, error) {
	e := &engine{
		r: r, ctx: ctx, what: what,
		active:  map[*claimBatch]bool{},
		wake:    make(chan struct{}, 1),
		settled: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go e.recorder()
	var claimed []int64
	type claimResult struct {
		token string
		rows  []row
		err   error
		at    time.Time
	}
	startClaim := func() chan claimResult {
		ch := make(chan claimResult, 1)
		go func() {
			token, at := newToken(), time.Now()
			rows, err := claim(ctx, token)
			ch <- claimResult{token, rows, err, at}
		}()
		return ch
	}
	next := startClaim()
	for next != nil {
		res := <-next
		next = nil
		if res.err != nil {
			if ctx.Err() == nil {
				e.fail(fmt.Errorf("outbox: %s: claim: %w", what, res.err))
			}
			break
		}
		if len(res.rows) == 0 {
			e.mu.Lock()
			n := len(e.active)
			e.mu.Unlock()
			if once || n == 0 || ctx.Err() != nil {
				break
			}
			select { // claimable rows appear when a claim is settled
			case <-e.settled:
			case <-ctx.Done():
			}
			if ctx.Err() == nil {
				next = startClaim()
			}
			continue
		}
		for _, rw := range res.rows {
			claimed = append(claimed, rw.id)
		}
		b := &claimBatch{
			token: res.token, rows: res.rows, leaseEnd: res.at.Add(r.cfg.Lease),
			published: map[int64]bool{}, failed: map[keyID]failure{}, pausedKeys: map[keyID]bool{},
		}
		e.mu.Lock()
		e.st.Claimed += len(res.rows)
		e.active[b] = true
		e.mu.Unlock()
		if !once && ctx.Err() == nil {
			// Claim the next batch while this one is handed over: its keys
			// are leased already, so the next claim cannot take them.
			next = startClaim()
		}
		e.submit(b) // with ctx ended, holds every row; the settle releases them
	}
	for { // wait until every claim is settled
		e.mu.Lock()
		n := len(e.active)
		e.mu.Unlock()
		if n == 0 {
			break
		}
		<-e.settled
	}
	close(e.stop)
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st, claimed, e.err
}

func (e *engine) fail(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

// submit hands the rows of b to the publisher in id order, within the
// in-flight budget. A row of a key that already failed in b, and every row
// once ctx ended or the lease could not be kept, is held.
func (e *engine) submit(b *claimBatch) {
	r := e.r
	for i, rw := range b.rows {
		k := keyID{rw.topic, rw.key}
		e.mu.Lock()
		_, keyFailed := b.failed[k]
		leaseOK := time.Now().Before(b.leaseEnd)
		e.mu.Unlock()
		if rw.key != "" && keyFailed {
			e.held(1)
			continue
		}
		if !leaseOK {
			e.held(len(b.rows) - i)
			break
		}
		if rw.bad != nil {
			// Fail it here, before any later row of its key is handed over.
			e.mu.Lock()
			e.fail1(b, rw, rw.bad, true)
			e.mu.Unlock()
			continue
		}
		size := rw.size()
		if err := r.budget.acquire(e.ctx, size); err != nil {
			e.held(len(b.rows) - i)
			break
		}
		e.mu.Lock()
		b.outstanding++
		e.mu.Unlock()
		// The Pub/Sub client must not fail a message because the caller
		// gave up (it would not pause the key, and a later message of the
		// key could overtake it); a plain Publisher's adapter pauses the
		// key on any error, so it may see the cancellation.
		pctx := e.ctx
		if r.native {
			pctx = context.WithoutCancel(e.ctx)
		}
		res := r.pub.PublishAsync(pctx, rw.topic, messaging.Message{Data: rw.data, Attributes: rw.attrs, OrderingKey: rw.key})
		go e.await(b, rw, res, size)
	}
	e.mu.Lock()
	b.submitted = true
	e.maybeSettle(b)
	e.mu.Unlock()
}

func (e *engine) held(n int) {
	e.mu.Lock()
	e.st.Held += n
	e.mu.Unlock()
}

// await waits for the result of rw (the publisher bounds the wait: the
// Pub/Sub client's publish timeout, or PublishTimeout per call).
func (e *engine) await(b *claimBatch, rw row, res messaging.PublishResult, size int) {
	<-res.Ready()
	_, err := res.Get(context.WithoutCancel(e.ctx))
	e.r.budget.release(size)
	e.mu.Lock()
	defer e.mu.Unlock()
	b.outstanding--
	if err == nil {
		b.published[rw.id] = true
		e.st.Published++
		if !rw.head { // the head is marked when the claim settles
			e.marks = append(e.marks, rw.id)
			e.notify()
		}
	} else {
		// A cancellation by the caller is not the row's fault: no attempt
		// is recorded, but it still stops the rest of its key.
		gaveUp := e.ctx.Err() != nil && errors.Is(err, e.ctx.Err())
		e.fail1(b, rw, err, !gaveUp)
	}
	e.maybeSettle(b)
}

// fail1 records that rw failed (attempted: through no fault of the
// caller). For a key, only its oldest failed row is recorded; the later
// ones are held. Called with mu held.
func (e *engine) fail1(b *claimBatch, rw row, err error, attempted bool) {
	if rw.key == "" {
		if attempted {
			b.keyless = append(b.keyless, failure{rw, err, true})
			e.st.Failed++
		} else {
			e.st.Held++
		}
		return
	}
	k := keyID{rw.topic, rw.key}
	b.pausedKeys[k] = true
	f, ok := b.failed[k]
	if ok && rw.id > f.row.id {
		e.st.Held++
		return
	}
	if ok { // results may arrive out of order: the older row is the failure
		if f.attempted {
			e.st.Failed--
		} else {
			e.st.Held--
		}
		e.st.Held++
	}
	b.failed[k] = failure{rw, err, attempted}
	if attempted {
		e.st.Failed++
	} else {
		e.st.Held++
	}
}

// maybeSettle queues b for settling once all its results are in. Called
// with mu held, after the acknowledgements of b were queued, so the
// recorder writes them before it releases b's rows.
func (e *engine) maybeSettle(b *claimBatch) {
	if b.submitted && b.outstanding == 0 {
		e.settle = append(e.settle, b)
		e.notify()
	}
}

func (e *engine) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// recorder writes acknowledgements in batches as they arrive, settles
// finished claims and renews the leases of claims that take long.
func (e *engine) recorder() {
	defer close(e.done)
	renew := time.NewTicker(max(e.r.cfg.Lease/3, time.Millisecond))
	defer renew.Stop()
	for {
		select {
		case <-e.wake:
		case <-renew.C:
			e.renew()
			continue
		case <-e.stop:
			e.flush() // nothing is left, but be sure
			return
		}
		e.flush()
	}
}

const markChunk = 5000

func (e *engine) flush() {
	for {
		e.mu.Lock()
		marks, settle := e.marks, e.settle
		e.marks, e.settle = nil, nil
		e.mu.Unlock()
		if len(marks) == 0 && len(settle) == 0 {
			return
		}
		// The outcome is recorded even if ctx ended: the messages are out.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 30*time.Second)
		for len(marks) > 0 {
			n := min(len(marks), markChunk)
			if _, err := e.r.cfg.Pool.Exec(ctx, markPublishedSQL, marks[:n]); err != nil {
				e.fail(fmt.Errorf("outbox: %s: mark %d published (they will be published again once their lease expires): %w", e.what, n, err))
			}
			marks = marks[n:]
		}
		for _, b := range settle {
			e.settleClaim(ctx, b)
		}
		cancel()
	}
}

func (e *engine) settleClaim(ctx context.Context, b *claimBatch) {
	r := e.r
	e.mu.Lock()
	failures := slices.Clone(b.keyless)
	for _, f := range b.failed {
		if f.attempted {
			failures = append(failures, f)
		}
	}
	isFailed := map[int64]bool{}
	for _, f := range failures {
		isFailed[f.row.id] = true
	}
	var headsPublished, release []int64
	for _, rw := range b.rows {
		switch {
		case !rw.head:
		case b.published[rw.id]:
			headsPublished = append(headsPublished, rw.id)
		case !isFailed[rw.id]:
			release = append(release, rw.id)
		}
	}
	paused := b.pausedKeys
	e.mu.Unlock()
	slices.SortFunc(failures, func(a, b failure) int { return cmp.Compare(a.row.id, b.row.id) })

	ids, msgs := make([]int64, len(failures)), make([]string, len(failures))
	for i, f := range failures {
		ids[i], msgs[i] = f.row.id, truncate(f.err.Error(), 2000)
		r.cfg.Logger.WarnContext(e.ctx, "outbox: publish failed; ordering key paused until the row's retry",
			slog.Int64("outbox_id", f.row.id), slog.String("topic", f.row.topic), slog.String("ordering_key", f.row.key),
			slog.Any("error", f.err))
	}
	if len(ids) == 0 && len(release) == 0 && len(headsPublished) > 0 {
		// Every head was published (the common case): one plain UPDATE,
		// the published part of settleSQL.
		if _, err := r.cfg.Pool.Exec(ctx, settleHeadsSQL, headsPublished); err != nil {
			e.fail(fmt.Errorf("outbox: %s: settle a claim: mark %d published heads (their lease will expire and they will be published again): %w",
				e.what, len(headsPublished), err))
		}
	} else if len(ids) > 0 || len(release) > 0 || len(headsPublished) > 0 {
		rows, err := r.cfg.Pool.Query(ctx, settleSQL, b.token, ids, msgs, nonNilIDs(release),
			r.cfg.RetryBackoff.Seconds(), r.cfg.MaxRetryBackoff.Seconds(), nonNilIDs(headsPublished))
		if err == nil {
			for rows.Next() {
				var (
					id, attempts, settled int64
					topic, key            string
					age, retryIn          float64
				)
				if err := rows.Scan(&id, &topic, &key, &attempts, &age, &retryIn, &settled); err != nil {
					break
				}
				if age < r.cfg.StuckAfter.Seconds() {
					continue
				}
				var lastErr string
				if i, ok := slices.BinarySearch(ids, id); ok {
					lastErr = msgs[i]
				}
				r.cfg.Logger.WarnContext(e.ctx, StuckMessage,
					slog.Int64("outbox_id", id), slog.String("topic", topic), slog.String("ordering_key", key),
					slog.Int64("attempts", attempts), slog.Float64("age_seconds", age),
					slog.Float64("retry_in_seconds", retryIn), slog.String("last_error", lastErr))
			}
			rows.Close()
			err = rows.Err()
		}
		if err != nil {
			e.fail(fmt.Errorf("outbox: %s: settle a claim: record %d failures, %d published heads, release %d (their lease will expire and they will be published again): %w",
				e.what, len(ids), len(headsPublished), len(release), err))
		}
	}
	// The key's results are all in and its failure is recorded: let the
	// publisher take the key again (its next attempt waits for the backoff).
	for k := range paused {
		r.pub.ResumePublish(k.topic, k.key)
	}
	e.mu.Lock()
	delete(e.active, b)
	e.mu.Unlock()
	select {
	case e.settled <- struct{}{}:
	default:
	}
}

// renew extends the lease of every claim still being published.
func (e *engine) renew() {
	e.mu.Lock()
	type job struct {
		b   *claimBatch
		ids []int64
	}
	var jobs []job
	for b := range e.active {
		var ids []int64
		for _, rw := range b.rows {
			if rw.head {
				ids = append(ids, rw.id)
			}
		}
		jobs = append(jobs, job{b, ids})
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), max(e.r.cfg.Lease/3, time.Second))
	defer cancel()
	for _, j := range jobs {
		start := time.Now()
		if _, err := e.r.cfg.Pool.Exec(ctx, renewSQL, j.b.token, j.ids, e.r.cfg.Lease.Seconds()); err != nil {
			e.r.cfg.Logger.WarnContext(e.ctx, "outbox: renew lease failed", slog.Any("error", err))
			continue
		}
		e.mu.Lock()
		j.b.leaseEnd = start.Add(e.r.cfg.Lease)
		e.mu.Unlock()
	}
}

// StuckMessage is the message of the warning logged for every failed
// publish of a row older than Config.StuckAfter (fields outbox_id, topic,
// ordering_key, attempts, age_seconds, retry_in_seconds, last_error).
// Alert on it (a log-based metric) to learn about a row that blocks its key.
const StuckMessage = "outbox: row stuck"

// Run publishes pending rows every interval until ctx ends, then returns
// nil: each tick drains what can be claimed (see Drain). Errors are logged,
// not returned. It returns ErrInvalidInterval for a non-positive interval.
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
		if _, err := r.Drain(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.WarnContext(ctx, "outbox: relay pass failed", slog.Any("error", err))
		}
		timer.Reset(interval)
	}
}

// budget bounds the messages and bytes in flight.
type budget struct {
	mu             sync.Mutex
	n, bytes       int
	maxN, maxBytes int
	wake           chan struct{}
}

func newBudget(maxN, maxBytes int) *budget {
	return &budget{maxN: maxN, maxBytes: maxBytes, wake: make(chan struct{})}
}

func (b *budget) acquire(ctx context.Context, size int) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.mu.Lock()
		if b.n == 0 || (b.n < b.maxN && b.bytes+size <= b.maxBytes) {
			b.n++
			b.bytes += size
			b.mu.Unlock()
			return nil
		}
		w := b.wake
		b.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) release(size int) {
	b.mu.Lock()
	b.n--
	b.bytes -= size
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
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
