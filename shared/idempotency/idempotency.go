// Package idempotency makes event handlers safe under at-least-once
// delivery: each (consumer, event key) takes effect once.
//
// Two modes, as DESIGN.md's handler contract describes:
//
//   - Transactional (Store.Transactional, PostgreSQL only): the claim row,
//     the handler's business writes and its outbox rows commit in one
//     transaction. A concurrent duplicate waits on the primary key until the
//     first delivery's transaction ends, then sees the event as done (or,
//     if the first rolled back, processes it itself). Effects happen exactly
//     once; a failed or killed attempt leaves nothing behind.
//   - Lease (LeaseStore.Claim/Complete/Release): for side effects outside
//     PostgreSQL, such as the payment gateway. A claim is an in-progress
//     record with a lease expiry and a fencing token; a duplicate during the
//     lease gets the transient ErrInProgress, a finished event returns the
//     stored result, a failed attempt releases the claim, and an expired
//     lease is taken over by exactly one claimer. The caller passes the key
//     on to the remote side (Idempotency-Key header), because a holder that
//     dies after the call and before Complete leaves the effect to be
//     repeated by the next taker.
//
// In both modes a payload whose hash differs from the recorded one is the
// permanent ErrPayloadMismatch (tampering or a key collision).
//
// Completed records are kept for Config.Retention (default 7 days, the
// longest Pub/Sub keeps a message) and removed by Purge; a redelivery after
// that is processed again.
//
// # Round trips
//
// A round trip is one request to the server that waits for its answer; with
// the pgx tracer (pgx.QueryTracer, pgx.BatchTracer) each traced query or
// batch is one round trip, because every statement here is either a
// simple-protocol query or a cached prepared statement (the first use of a
// statement on a connection also prepares it: one more round trip, once per
// connection), and a batch is one pipeline. Acquiring a pooled connection
// that was idle for over a second adds pgxpool's ping.
// A duplicate delivery in transactional mode costs two round trips
// (BEGIN+claim, then ROLLBACK of the empty transaction: no commit, and no
// ERROR in the server log); a first delivery costs two plus the handler's
// own queries (BEGIN+claim, COMMIT).
// A lease Claim costs one round trip in the common case.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/retry"
)

// Errors returned by the stores. Match them with errors.Is; the returned
// errors also carry a retry class (retry.ErrPermanent / retry.ErrTransient).
var (
	// ErrPayloadMismatch: the key was recorded with a different payload
	// hash. Permanent: dead-letter the event.
	ErrPayloadMismatch = errors.New("payload does not match the recorded event")
	// ErrInProgress: another holder's lease on the key has not expired.
	// Transient: let Pub/Sub redeliver later.
	ErrInProgress = errors.New("event is in progress")
	// ErrLeaseLost: Complete or Release with a claim that no longer owns
	// the key (its lease expired and another claimer took over, or it was
	// already completed or released). Transient: a redelivery sees the
	// current owner's outcome.
	ErrLeaseLost = errors.New("lease lost")
	// ErrNotFound: Inspect found no record for the key.
	ErrNotFound = errors.New("no idempotency record")
	// ErrInvalidKey: empty consumer or ID, or not valid UTF-8. Permanent.
	ErrInvalidKey = errors.New("invalid idempotency key")
	// ErrInvalidLease: Claim with a lease duration <= 0. Permanent.
	ErrInvalidLease = errors.New("lease duration must be positive")
	// ErrInvalidRetention: Config.Retention < 0.
	ErrInvalidRetention = errors.New("retention must not be negative")
	// ErrInvalidBatchSize: Config.PurgeBatchSize < 0.
	ErrInvalidBatchSize = errors.New("purge batch size must not be negative")
)

// DefaultRetention is how long completed records are kept when
// Config.Retention is zero: Pub/Sub's longest message retention.
const DefaultRetention = 7 * 24 * time.Hour

// DefaultPurgeBatchSize is the number of records Purge deletes per
// statement when Config.PurgeBatchSize is zero.
const DefaultPurgeBatchSize = 1000

// Config tunes a store. The zero value is valid.
type Config struct {
	// Retention is how long a completed record is kept; PurgeExpired
	// removes older ones. Zero means DefaultRetention. Keep it longer than
	// the subscription's message retention, or a late redelivery is
	// processed again.
	Retention time.Duration
	// PurgeBatchSize bounds the rows deleted by one statement of Purge, so
	// purging never holds many row locks at once. Zero means
	// DefaultPurgeBatchSize.
	PurgeBatchSize int
	// Now is the clock of the in-memory store (the PostgreSQL store uses
	// the server's clock). Nil means time.Now.
	Now func() time.Time
}

// Validate reports the first invalid field as one of the ErrInvalid* sentinels.
func (c Config) Validate() error {
	if c.Retention < 0 {
		return fmt.Errorf("idempotency: config: %w", ErrInvalidRetention)
	}
	if c.PurgeBatchSize < 0 {
		return fmt.Errorf("idempotency: config: %w", ErrInvalidBatchSize)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.PurgeBatchSize == 0 {
		c.PurgeBatchSize = DefaultPurgeBatchSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Key identifies one event for one consumer. Two consumers of the same
// event have different keys, so each processes it once.
type Key struct {
	// Consumer names the handler, e.g. "payment".
	Consumer string
	// ID identifies the event: KeyFor's encoding of the CloudEvent source
	// and id by default, or a key the caller derives from the payload.
	ID string
}

// KeyFor returns the default key of a CloudEvent for consumer: the event's
// source and id, which the CloudEvents spec makes unique together,
// encoded so that two different (source, id) pairs never share a key.
//
// When id contains no "/" (UUIDs, every producer in this repository) the
// key is source + "/" + id, byte for byte the key earlier versions wrote,
// so existing records keep working; it is unambiguous because the pair is
// recovered by cutting at the last "/". When id contains a "/" the old
// form was ambiguous (("//shop/eu", "1") and ("//shop", "eu/1") both gave
// "//shop/eu/1"), so the key is instead
//
//	"ce:" + base64url(source) + ":" + base64url(id)   (no padding)
//
// which contains no "/" and therefore never equals a key of the first
// form (each of those contains one). Only events whose id contains "/"
// get a new key; see docs/failure-model.md.
func KeyFor(consumer, source, id string) Key {
	if !strings.Contains(id, "/") {
		return Key{Consumer: consumer, ID: source + "/" + id}
	}
	enc := base64.RawURLEncoding
	return Key{Consumer: consumer, ID: "ce:" + enc.EncodeToString([]byte(source)) + ":" + enc.EncodeToString([]byte(id))}
}

// String returns "consumer:id", for logs and errors.
func (k Key) String() string { return k.Consumer + ":" + k.ID }

// Validate returns a permanent ErrInvalidKey when a part is empty, not
// valid UTF-8 or contains a NUL byte (PostgreSQL text cannot hold one).
func (k Key) Validate() error {
	for _, part := range []struct{ name, v string }{{"consumer", k.Consumer}, {"id", k.ID}} {
		switch {
		case part.v == "":
			return retry.Permanent(fmt.Errorf("idempotency: %w: empty %s", ErrInvalidKey, part.name))
		case !utf8.ValidString(part.v):
			return retry.Permanent(fmt.Errorf("idempotency: %w: %s is not valid UTF-8", ErrInvalidKey, part.name))
		}
		for i := 0; i < len(part.v); i++ {
			if part.v[i] == 0 {
				return retry.Permanent(fmt.Errorf("idempotency: %w: %s contains a NUL byte", ErrInvalidKey, part.name))
			}
		}
	}
	return nil
}

// HashPayload returns the SHA-256 of an event's data, the payload hash the
// stores record to detect a different payload under the same key.
func HashPayload(data []byte) []byte {
	sum := sha256.Sum256(data)
	return sum[:]
}

// Outcome is what Transactional did with an event.
type Outcome int

const (
	// OutcomeProcessed: the handler ran and its transaction committed.
	OutcomeProcessed Outcome = iota + 1
	// OutcomeDuplicate: the event was already processed; the handler did
	// not run. Acknowledge it.
	OutcomeDuplicate
)

func (o Outcome) String() string {
	switch o {
	case OutcomeProcessed:
		return "processed"
	case OutcomeDuplicate:
		return "duplicate"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// ClaimState is the state of a successful Claim.
type ClaimState int

const (
	// ClaimAcquired: the caller holds the lease and must perform the
	// effect, then Complete (or Release on failure).
	ClaimAcquired ClaimState = iota + 1
	// ClaimDone: the event was completed before; Claim.Result holds the
	// stored result. Do not perform the effect again.
	ClaimDone
)

func (s ClaimState) String() string {
	switch s {
	case ClaimAcquired:
		return "acquired"
	case ClaimDone:
		return "done"
	}
	return fmt.Sprintf("ClaimState(%d)", int(s))
}

// Claim is the answer of LeaseStore.Claim.
type Claim struct {
	Key   Key
	State ClaimState
	// Token fences an acquired claim: Complete and Release succeed only
	// while the record still carries it, so a holder whose lease expired
	// and was taken over cannot touch the new owner's record.
	Token string
	// Attempt counts the claims of the record: 1 for a new record, more
	// when an expired lease was taken over.
	Attempt int
	// LeaseExpiresAt is when an acquired lease expires (server clock).
	LeaseExpiresAt time.Time
	// Result is the stored result of a ClaimDone claim.
	Result []byte
}

// Status is the state of a stored record.
type Status string

// Record statuses.
const (
	StatusInProgress Status = "in_progress"
	StatusDone       Status = "done"
)

// Record is a stored idempotency record, as Inspect returns it for
// operators.
type Record struct {
	Key            Key
	Status         Status
	PayloadHash    []byte
	Attempts       int
	LeaseExpiresAt time.Time // zero unless in progress
	Result         []byte
	CreatedAt      time.Time
	CompletedAt    time.Time // zero unless done
}

// LeaseStore is the lease-mode port, implemented by *Store (PostgreSQL) and
// *MemoryStore. All methods are safe for concurrent use by many goroutines
// and, for *Store, many processes.
type LeaseStore interface {
	// Claim claims key for lease. It returns a ClaimAcquired claim for a
	// new key or one whose previous lease expired (of concurrent claimers
	// exactly one acquires), a ClaimDone claim with the stored result for
	// a completed key, a transient ErrInProgress while another holder's
	// lease runs, and a permanent ErrPayloadMismatch when payloadHash
	// differs from the recorded hash (a nil hash on either side skips the
	// check).
	Claim(ctx context.Context, key Key, payloadHash []byte, lease time.Duration) (Claim, error)
	// Complete marks an acquired claim done and stores result for later
	// duplicates. It fails with ErrLeaseLost when the claim no longer owns
	// the key. A claim whose lease expired but was not taken over still
	// completes.
	Complete(ctx context.Context, c Claim, result []byte) error
	// Release deletes an acquired claim after a failed attempt so that a
	// redelivery can claim at once. It fails with ErrLeaseLost when the
	// claim no longer owns the key.
	// Extend moves the lease of a held claim to lease from now, so a live
	// holder whose work outlasts one lease keeps the key while a holder
	// that died loses it within one lease. It reports ErrLeaseLost when the
	// claim is no longer held (taken over after expiry, released or
	// completed).
	Extend(ctx context.Context, c Claim, lease time.Duration) error
	Release(ctx context.Context, c Claim) error
	// Inspect returns the record of key, or ErrNotFound.
	Inspect(ctx context.Context, key Key) (Record, error)
	// Purge deletes completed records completed before olderThan, and
	// in-progress records whose lease expired before olderThan (abandoned
	// claims), and returns how many it deleted.
	Purge(ctx context.Context, olderThan time.Time) (int64, error)
}

// TxFunc is a transactional handler: it makes its business writes and
// outbox inserts with tx and must not commit or roll it back.
type TxFunc func(ctx context.Context, tx pgx.Tx) error

// TxStore is the transactional-mode port, implemented by *Store.
type TxStore interface {
	// Transactional runs fn at most once per key with effect: see
	// Store.Transactional.
	Transactional(ctx context.Context, key Key, payloadHash []byte, fn TxFunc) (Outcome, error)
}

var (
	_ LeaseStore = (*Store)(nil)
	_ TxStore    = (*Store)(nil)
	_ LeaseStore = (*MemoryStore)(nil)
)

func mismatch(key Key) error {
	return retry.Permanent(fmt.Errorf("idempotency: %s: %w", key, ErrPayloadMismatch))
}

func inProgress(key Key, until time.Time) error {
	if until.IsZero() {
		return retry.Transient(fmt.Errorf("idempotency: %s: %w", key, ErrInProgress))
	}
	return retry.Transient(fmt.Errorf("idempotency: %s: %w (lease until %s)", key, ErrInProgress, until.UTC().Format(time.RFC3339Nano)))
}

func leaseLost(op string, key Key) error {
	return retry.Transient(fmt.Errorf("idempotency: %s %s: %w", op, key, ErrLeaseLost))
}

func invalidLease(d time.Duration) error {
	return retry.Permanent(fmt.Errorf("idempotency: %w: %s", ErrInvalidLease, d))
}

func hashesDiffer(stored, given []byte) bool {
	return len(stored) > 0 && len(given) > 0 && string(stored) != string(given)
}
