package idempotency

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Component is the name the schema is migrated under (postgres.Migrate;
// version table goose_idempotency).
const Component = "idempotency"

// Migrations returns the embedded schema migrations, for tools that apply
// them with postgres.Migrate themselves.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// Migrate creates or upgrades the processed_events table and its function.
// It is safe to call from every process at start (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.Migrate(ctx, pool, Component, Migrations())
}

// Store is the PostgreSQL store on pgx/v5: both modes, on the
// processed_events table created by Migrate. It is safe for concurrent use;
// correctness across processes rests on the table's primary key and row
// locks, not on anything in the process.
type Store struct {
	pool *pgxpool.Pool
	cfg  Config
}

// New returns a store on pool. The schema must exist (Migrate).
func New(pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Store{pool: pool, cfg: cfg}, nil
}

// Transactional processes an event in transactional mode: it claims key
// and, in the same transaction, runs fn, which makes the business writes
// and outbox inserts with tx. When fn returns nil the transaction commits
// and Transactional returns OutcomeProcessed; when fn fails or panics the
// transaction rolls back, the claim disappears with the writes, and fn's
// error is returned unchanged (its retry class intact) so that the
// redelivery processes the event again.
//
// An event already processed returns OutcomeDuplicate without running fn.
// A concurrent delivery of the same key waits on the primary key until
// the first one's transaction ends: after its commit it returns
// OutcomeDuplicate, after its rollback (a failure, a killed connection, a
// cancelled context) it runs fn itself. Hence fn's writes commit exactly
// once per key while the record is retained.
//
// A different payloadHash under a recorded key returns the permanent
// ErrPayloadMismatch; a key held by a lease-mode claim returns the
// transient ErrInProgress. The transaction runs at the server's default
// isolation level (READ COMMITTED unless configured otherwise).
//
// How: BEGIN and the claim (idempotency_claim, which returns the outcome
// rather than raising) travel as one pipeline, one round trip, and the
// transaction pgx began with them is handed to fn. When the event is not
// claimed, nothing was written; Transactional rolls the empty transaction
// back (no commit, no fsync) and returns the outcome. So a duplicate costs
// two round trips and leaves no ERROR line in the server log.
func (s *Store) Transactional(ctx context.Context, key Key, payloadHash []byte, fn TxFunc) (outcome Outcome, err error) {
	if err := key.Validate(); err != nil {
		return 0, err
	}
	if len(payloadHash) == 0 {
		payloadHash = nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("idempotency: claim %s: %w", key, err)
	}
	var claimed string
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(claimSQL, key.Consumer, key.ID, payloadHash).QueryRow(func(row pgx.Row) error { return row.Scan(&claimed) })
	br := conn.Conn().SendBatch(ctx, b)
	err = br.Close()
	tx := br.Tx()
	if err != nil {
		rollback(ctx, tx)
		conn.Release()
		return 0, fmt.Errorf("idempotency: claim %s: %w", key, err)
	}
	if claimed != outcomeClaimed {
		// Nothing was written: the ROLLBACK costs a round trip but no commit.
		// (Ending it on another goroutine, off the caller's path, measured
		// slower: the pool and the two cores are busier.)
		rollback(ctx, tx)
		conn.Release()
		return claimOutcome(key, claimed)
	}
	finished := false
	defer func() {
		if !finished { // fn panicked: free the connection, let the panic go on
			rollback(ctx, tx)
			conn.Release()
		}
	}()
	if err := fn(ctx, tx); err != nil {
		finished = true
		rollback(ctx, tx)
		conn.Release()
		return 0, err
	}
	finished = true
	err = tx.Commit(ctx)
	conn.Release()
	if err != nil {
		return 0, fmt.Errorf("idempotency: commit %s: %w", key, err)
	}
	return OutcomeProcessed, nil
}

// claimSQL claims a key and returns the outcome (see the migration
// 0002_claim_without_error).
const claimSQL = `SELECT idempotency_claim($1, $2, $3)`

// Outcomes returned by idempotency_claim.
const (
	outcomeClaimed    = "claimed"
	outcomeDuplicate  = "duplicate"
	outcomeMismatch   = "mismatch"
	outcomeInProgress = "in_progress"
)

func claimOutcome(key Key, claimed string) (Outcome, error) {
	switch claimed {
	case outcomeDuplicate:
		return OutcomeDuplicate, nil
	case outcomeMismatch:
		return 0, mismatch(key)
	case outcomeInProgress:
		return 0, inProgress(key, time.Time{})
	}
	return 0, fmt.Errorf("idempotency: claim %s: unexpected outcome %q", key, claimed)
}

// rollback ends tx even when ctx is already cancelled. If the connection
// is broken the server has rolled back on its own.
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// claimLeaseSQL inserts a new in-progress record or takes over an expired
// lease with the same payload; when it does neither, the second branch
// returns the record as it is, for the caller to classify. If the
// conflicting row committed after this statement's snapshot, the second
// branch cannot see it (no row comes back) or sees an older version (an
// in-progress record whose lease has expired, though the takeover was
// refused): the caller runs the statement again.
const claimLeaseSQL = `
WITH claimed AS (
    INSERT INTO processed_events AS p
           (consumer, event_key, payload_hash, status, lease_token, lease_expires_at)
    VALUES ($1, $2, $3, 'in_progress', $4, now() + $5::bigint * interval '1 microsecond')
    ON CONFLICT (consumer, event_key) DO UPDATE
       SET lease_token = EXCLUDED.lease_token,
           lease_expires_at = EXCLUDED.lease_expires_at,
           attempts = p.attempts + 1
     WHERE p.status = 'in_progress'
       AND p.lease_expires_at <= now()
       AND (p.payload_hash IS NULL OR EXCLUDED.payload_hash IS NULL OR p.payload_hash = EXCLUDED.payload_hash)
    RETURNING p.status, p.payload_hash, p.attempts, p.lease_expires_at, p.result
)
SELECT true, false, status, payload_hash, attempts, lease_expires_at, result FROM claimed
UNION ALL
SELECT false, COALESCE(lease_expires_at <= now(), false), status, payload_hash, attempts, lease_expires_at, result
  FROM processed_events
 WHERE consumer = $1 AND event_key = $2 AND NOT EXISTS (SELECT FROM claimed)`

// maxClaimRaces bounds how often Claim re-runs its statement when the
// record changes under it (see claimLeaseSQL); each race means another
// claimer made progress, so hitting the bound is practically impossible.
const maxClaimRaces = 20

// Claim implements LeaseStore with the server's clock: one round trip in
// the common case.
func (s *Store) Claim(ctx context.Context, key Key, payloadHash []byte, lease time.Duration) (Claim, error) {
	if err := key.Validate(); err != nil {
		return Claim{}, err
	}
	if lease <= 0 {
		return Claim{}, invalidLease(lease)
	}
	if len(payloadHash) == 0 {
		payloadHash = nil
	}
	token := newToken()
	for range maxClaimRaces {
		var (
			acquired  bool
			stale     bool
			status    string
			hash      []byte
			attempts  int
			expiresAt *time.Time
			result    []byte
		)
		err := s.pool.QueryRow(ctx, claimLeaseSQL, key.Consumer, key.ID, payloadHash, token, lease.Microseconds()).
			Scan(&acquired, &stale, &status, &hash, &attempts, &expiresAt, &result)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return Claim{}, fmt.Errorf("idempotency: claim %s: %w", key, err)
		}
		if acquired {
			return Claim{Key: key, State: ClaimAcquired, Token: token, Attempt: attempts, LeaseExpiresAt: *expiresAt}, nil
		}
		if hashesDiffer(hash, payloadHash) {
			return Claim{}, mismatch(key)
		}
		if stale && Status(status) == StatusInProgress {
			continue
		}
		if Status(status) == StatusDone {
			return Claim{Key: key, State: ClaimDone, Attempt: attempts, Result: result}, nil
		}
		var until time.Time
		if expiresAt != nil {
			until = *expiresAt
		}
		return Claim{}, inProgress(key, until)
	}
	return Claim{}, inProgress(key, time.Time{})
}

const completeSQL = `
UPDATE processed_events
   SET status = 'done', result = $4, completed_at = now(), lease_token = NULL, lease_expires_at = NULL
 WHERE consumer = $1 AND event_key = $2 AND lease_token = $3 AND status = 'in_progress'`

// Complete implements LeaseStore.
func (s *Store) Complete(ctx context.Context, c Claim, result []byte) error {
	return s.CompleteTx(ctx, s.pool, c, result)
}

// CompleteTx is Complete run with q, typically the caller's transaction, so
// that recording the effect (a payment row, outbox rows) and completing the
// claim commit together. ErrLeaseLost is reported at once; the caller rolls
// back. The fencing holds until commit: the UPDATE locks the row, so a
// takeover waits for the transaction and then finds the record done.
func (s *Store) CompleteTx(ctx context.Context, q postgres.Querier, c Claim, result []byte) error {
	if c.State != ClaimAcquired || c.Token == "" {
		return leaseLost("complete", c.Key)
	}
	if result == nil {
		result = []byte{}
	}
	tag, err := q.Exec(ctx, completeSQL, c.Key.Consumer, c.Key.ID, c.Token, result)
	if err != nil {
		return fmt.Errorf("idempotency: complete %s: %w", c.Key, err)
	}
	if tag.RowsAffected() == 0 {
		return leaseLost("complete", c.Key)
	}
	return nil
}

// Release implements LeaseStore.
func (s *Store) Release(ctx context.Context, c Claim) error {
	if c.State != ClaimAcquired || c.Token == "" {
		return leaseLost("release", c.Key)
	}
	tag, err := s.pool.Exec(ctx,
		`DELETE FROM processed_events WHERE consumer = $1 AND event_key = $2 AND lease_token = $3 AND status = 'in_progress'`,
		c.Key.Consumer, c.Key.ID, c.Token)
	if err != nil {
		return fmt.Errorf("idempotency: release %s: %w", c.Key, err)
	}
	if tag.RowsAffected() == 0 {
		return leaseLost("release", c.Key)
	}
	return nil
}

// Inspect implements LeaseStore.
func (s *Store) Inspect(ctx context.Context, key Key) (Record, error) {
	var (
		r         = Record{Key: key}
		status    string
		expiresAt *time.Time
		completed *time.Time
	)
	err := s.pool.QueryRow(ctx, `
SELECT status, payload_hash, attempts, lease_expires_at, result, created_at, completed_at
  FROM processed_events WHERE consumer = $1 AND event_key = $2`, key.Consumer, key.ID).
		Scan(&status, &r.PayloadHash, &r.Attempts, &expiresAt, &r.Result, &r.CreatedAt, &completed)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("idempotency: inspect %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("idempotency: inspect %s: %w", key, err)
	}
	r.Status = Status(status)
	if expiresAt != nil {
		r.LeaseExpiresAt = *expiresAt
	}
	if completed != nil {
		r.CompletedAt = *completed
	}
	return r, nil
}

const purgeSQL = `
WITH doomed AS (
    SELECT consumer, event_key FROM processed_events
     WHERE status = 'done' AND completed_at < $1
    UNION ALL
    SELECT consumer, event_key FROM processed_events
     WHERE status = 'in_progress' AND lease_expires_at < $1
    LIMIT $2
)
DELETE FROM processed_events p
 USING doomed d
 WHERE p.consumer = d.consumer AND p.event_key = d.event_key
   AND (p.status = 'done' AND p.completed_at < $1 OR p.status = 'in_progress' AND p.lease_expires_at < $1)`

// Purge implements LeaseStore: it deletes in batches of
// Config.PurgeBatchSize, each its own short transaction, until a batch
// comes back short. Records that change status concurrently are left
// alone; a claim whose lease was taken over after the cut-off survives.
func (s *Store) Purge(ctx context.Context, olderThan time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, purgeSQL, olderThan, s.cfg.PurgeBatchSize)
		if err != nil {
			return total, fmt.Errorf("idempotency: purge: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(s.cfg.PurgeBatchSize) {
			return total, nil
		}
	}
}

// PurgeExpired purges the records older than Config.Retention.
func (s *Store) PurgeExpired(ctx context.Context) (int64, error) {
	return s.Purge(ctx, time.Now().Add(-s.cfg.Retention))
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
