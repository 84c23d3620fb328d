package replay

import (
	"context"
	"embed"
	"encoding/json"
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

// Component is the name the audit migrations are recorded under (goose
// version table goose_eventctl).
const Component = "eventctl"

// Migrate creates or upgrades the audit tables dlq_replays and
// dlq_replay_messages. It is safe to call concurrently (postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	if err := postgres.Migrate(ctx, pool, Component, sub); err != nil {
		return fmt.Errorf("migrate replay audit: %w", err)
	}
	return nil
}

// Audit records replays in PostgreSQL and answers whether a dead letter
// was replayed before. It is safe for concurrent use, across processes:
// Claim serialises claimers of one dead letter with an advisory lock.
type Audit struct {
	Pool *pgxpool.Pool
}

// Prior is an earlier replay of a dead letter that still counts: it was
// published, or is marked publishing (in flight, or its run died before
// recording the result).
type Prior struct {
	ReplayID   string
	By         string
	At         time.Time
	Result     string // published or publishing
	NewMessage string
}

// Run is the audit record of one replay run.
type Run struct {
	ID       string
	By       string
	Archive  string
	Filters  map[string]any
	Forced   bool
	Selected int
}

// BeginRun records the start of a run.
func (a *Audit) BeginRun(ctx context.Context, r Run) error {
	filters, err := json.Marshal(r.Filters)
	if err != nil {
		return fmt.Errorf("audit: encode filters: %w", err)
	}
	_, err = a.Pool.Exec(ctx, `INSERT INTO dlq_replays (replay_id, replayed_by, archive, filters, forced, selected)
VALUES ($1, $2, $3, $4, $5, $6)`, r.ID, r.By, r.Archive, filters, r.Forced, r.Selected)
	if err != nil {
		return fmt.Errorf("audit: record replay %s: %w", r.ID, err)
	}
	return nil
}

// FinishRun records the end of a run and its counts. result is one of
// completed, completed_with_errors or aborted.
func (a *Audit) FinishRun(ctx context.Context, id string, published, failed, refused int, result string) error {
	_, err := a.Pool.Exec(ctx, `UPDATE dlq_replays SET finished_at = now(), published = $2, failed = $3, refused = $4, result = $5
WHERE replay_id = $1`, id, published, failed, refused, result)
	if err != nil {
		return fmt.Errorf("audit: finish replay %s: %w", id, err)
	}
	return nil
}

// Priors returns the earlier replays of archiveID that count (newest
// first). It reads only; a database without the audit tables has none.
func (a *Audit) Priors(ctx context.Context, archiveID string) ([]Prior, error) {
	var exists bool
	if err := a.Pool.QueryRow(ctx, `SELECT to_regclass('dlq_replay_messages') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if !exists {
		return nil, nil
	}
	return priors(ctx, a.Pool, archiveID)
}

func priors(ctx context.Context, q postgres.Querier, archiveID string) ([]Prior, error) {
	rows, err := q.Query(ctx, `SELECT m.replay_id::text, r.replayed_by, m.replayed_at, m.result, coalesce(m.new_message_id, '')
  FROM dlq_replay_messages m JOIN dlq_replays r USING (replay_id)
 WHERE m.archive_id = $1 AND m.result IN ('published', 'publishing')
 ORDER BY m.replayed_at DESC, m.replay_id`, archiveID)
	if err != nil {
		return nil, fmt.Errorf("audit: earlier replays of %s: %w", archiveID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Prior, error) {
		var p Prior
		err := row.Scan(&p.ReplayID, &p.By, &p.At, &p.Result, &p.NewMessage)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: earlier replays of %s: %w", archiveID, err)
	}
	return out, nil
}

// ErrAlreadyReplayed is returned by Claim when the dead letter has a
// prior replay and force is false.
var ErrAlreadyReplayed = errors.New("already replayed")

// Claimed is the message row Claim inserted.
type Claimed struct {
	// Priors are the earlier replays that count (none unless forced).
	Priors []Prior
}

// ClaimMessage is what Claim records before publishing.
type ClaimMessage struct {
	ReplayID          string
	ArchiveID         string
	EventID           string
	OriginalMessageID string
	Topic             string
	// Count computes the replay-count from the priors found under the
	// lock; it is stored with the row and returned by Claim.
	Count func(priors []Prior) int
}

// Claim records that m is about to be published, as 'publishing', unless
// the dead letter was replayed before (published or publishing) and force
// is false: then it records nothing and returns the priors with an error
// wrapping ErrAlreadyReplayed. Claimers of one dead letter are
// serialised by a transaction-scoped advisory lock, so two concurrent runs
// cannot both replay it unforced. It returns the replay count stored.
func (a *Audit) Claim(ctx context.Context, m ClaimMessage, force bool) (count int, prior []Prior, err error) {
	err = pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('eventctl.dlq_replay:' || $1, 0))`, m.ArchiveID); err != nil {
			return err
		}
		var err error
		if prior, err = priors(ctx, tx, m.ArchiveID); err != nil {
			return err
		}
		if len(prior) > 0 && !force {
			return ErrAlreadyReplayed
		}
		count = m.Count(prior)
		_, err = tx.Exec(ctx, `INSERT INTO dlq_replay_messages
  (replay_id, archive_id, event_id, original_message_id, topic, replay_count, result)
VALUES ($1, $2, nullif($3, ''), nullif($4, ''), $5, $6, 'publishing')`,
			m.ReplayID, m.ArchiveID, m.EventID, m.OriginalMessageID, m.Topic, count)
		return err
	})
	if errors.Is(err, ErrAlreadyReplayed) {
		return 0, prior, fmt.Errorf("%s: %w", m.ArchiveID, err)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("audit: claim %s: %w", m.ArchiveID, err)
	}
	return count, prior, nil
}

// Finish records the result of a claimed message: published with its new
// message id, or failed with the error (a failed replay does not count as
// a prior, so it can be retried without force).
func (a *Audit) Finish(ctx context.Context, replayID, archiveID, newMessageID string, pubErr error) error {
	result, msg := "published", ""
	if pubErr != nil {
		result, msg = "failed", pubErr.Error()
	}
	_, err := a.Pool.Exec(ctx, `UPDATE dlq_replay_messages
   SET result = $3, new_message_id = nullif($4, ''), error = nullif($5, ''), replayed_at = now()
 WHERE replay_id = $1 AND archive_id = $2`, replayID, archiveID, result, newMessageID, msg)
	if err != nil {
		return fmt.Errorf("audit: record result of %s: %w", archiveID, err)
	}
	return nil
}
