package cli

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/postgres"
)

// missingTable turns "relation does not exist" into a hint that the
// database is not the platform's (or not migrated yet).
func missingTable(err error, table string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" {
		return fmt.Errorf("table %s does not exist in this database: is it the platform's database, and has a service started on it (migrations)? (%w)", table, err)
	}
	return err
}

func (c *Command) idemInspect(ctx context.Context, args []string) error {
	f := c.newFlags("idempotency inspect", "CONSUMER:ID [--json]",
		"Shows the idempotency record of one event for one consumer. ID is the event key, by default\n"+
			"the CloudEvent source and id joined by \"/\" (e.g. payment:orders-api/3f2c...).")
	asJSON := f.Bool("json", false, "print JSON")
	arg, err := f.parseOne(args, "KEY (consumer:id)")
	if err != nil {
		return err
	}
	consumer, id, ok := strings.Cut(arg, ":")
	key := idempotency.Key{Consumer: consumer, ID: id}
	if !ok || key.Validate() != nil {
		return f.usagef("invalid key %q: want consumer:id", arg)
	}
	pool, closeDB, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	store, err := idempotency.New(pool, idempotency.Config{})
	if err != nil {
		return err
	}
	rec, err := store.Inspect(ctx, key)
	if errors.Is(err, idempotency.ErrNotFound) {
		return fmt.Errorf("no idempotency record for %s (never processed, or purged)", key)
	}
	if err != nil {
		return missingTable(err, "processed_events")
	}
	result, resultEnc := textOrBase64(rec.Result)
	if *asJSON {
		type out struct {
			Consumer       string     `json:"consumer"`
			ID             string     `json:"id"`
			Status         string     `json:"status"`
			Attempts       int        `json:"attempts"`
			PayloadHash    string     `json:"payload_hash,omitempty"`
			CreatedAt      time.Time  `json:"created_at"`
			CompletedAt    *time.Time `json:"completed_at,omitempty"`
			LeaseExpiresAt *time.Time `json:"lease_expires_at,omitempty"`
			Result         string     `json:"result,omitempty"`
			ResultEncoding string     `json:"result_encoding,omitempty"`
		}
		o := out{Consumer: key.Consumer, ID: key.ID, Status: string(rec.Status), Attempts: rec.Attempts,
			PayloadHash: hex.EncodeToString(rec.PayloadHash), CreatedAt: rec.CreatedAt}
		if !rec.CompletedAt.IsZero() {
			o.CompletedAt = &rec.CompletedAt
		}
		if !rec.LeaseExpiresAt.IsZero() {
			o.LeaseExpiresAt = &rec.LeaseExpiresAt
		}
		if len(rec.Result) > 0 {
			o.Result, o.ResultEncoding = result, resultEnc
		}
		return writeJSON(c.Stdout, o)
	}
	tw := newTable(c.Stdout)
	row := fieldWriter(tw)
	row("Key", key.String())
	row("Status", string(rec.Status))
	row("Attempts", fmt.Sprint(rec.Attempts))
	row("Created", rec.CreatedAt.UTC().Format(time.RFC3339Nano))
	if !rec.CompletedAt.IsZero() {
		row("Completed", rec.CompletedAt.UTC().Format(time.RFC3339Nano))
	}
	if !rec.LeaseExpiresAt.IsZero() {
		row("Lease expires", rec.LeaseExpiresAt.UTC().Format(time.RFC3339Nano))
	}
	row("Payload hash", dash(hex.EncodeToString(rec.PayloadHash)))
	if len(rec.Result) > 0 {
		row("Result ("+resultEnc+")", result)
	}
	return tw.Flush()
}

// countPurgeSQL counts what idempotency.Store.Purge deletes for cut-off $1.
const countPurgeSQL = `SELECT count(*) FROM processed_events
 WHERE status = 'done' AND completed_at < $1 OR status = 'in_progress' AND lease_expires_at < $1`

func (c *Command) idemPurge(ctx context.Context, args []string) error {
	f := c.newFlags("idempotency purge", "--older-than DURATION [--yes]",
		"Deletes idempotency records completed more than DURATION ago (and abandoned leases that expired\n"+
			"before then), by the database's clock. Without --yes it prints how many would go and asks on a\n"+
			"terminal; in non-interactive use it refuses. A redelivery of a purged event is processed again,\n"+
			"so keep DURATION above the subscriptions' message retention (7 days at most).")
	olderThan := f.String("older-than", "", "age of the records to delete (e.g. 720h, 30d); required")
	yes := f.Bool("yes", false, "delete without asking")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *olderThan == "" {
		return f.usagef("--older-than is required")
	}
	age, err := parseDuration(*olderThan)
	if err != nil || age <= 0 {
		return f.usagef("--older-than %q: want a positive duration (720h, 30d)", *olderThan)
	}
	pool, closeDB, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	var cutoff time.Time
	if err := pool.QueryRow(ctx, `SELECT now() - make_interval(secs => $1)`, age.Seconds()).Scan(&cutoff); err != nil {
		return fmt.Errorf("database clock: %w", err)
	}
	var n int64
	if err := pool.QueryRow(ctx, countPurgeSQL, cutoff).Scan(&n); err != nil {
		return missingTable(err, "processed_events")
	}
	if age < idempotency.DefaultRetention {
		fmt.Fprintf(c.Stderr, "eventctl: warning: %s is shorter than the default retention (%s): a redelivery of a purged event will be processed again\n",
			age, idempotency.DefaultRetention)
	}
	if n == 0 {
		fmt.Fprintf(c.Stdout, "nothing to purge: no idempotency record older than %s (before %s)\n", *olderThan, cutoff.UTC().Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(c.Stdout, "%d idempotency record(s) older than %s (before %s) would be deleted\n", n, *olderThan, cutoff.UTC().Format(time.RFC3339))
	if !*yes {
		if !c.Interactive() {
			return errors.New("refusing to delete without --yes: stdin is not a terminal, so nobody can confirm")
		}
		fmt.Fprintf(c.Stdout, "Delete them? [y/N]: ")
		line, _ := bufio.NewReader(c.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(c.Stdout, "aborted: nothing deleted")
			return errIncomplete
		}
	}
	store, err := idempotency.New(pool, idempotency.Config{})
	if err != nil {
		return err
	}
	deleted, err := store.Purge(ctx, cutoff)
	if err != nil {
		return fmt.Errorf("purge (deleted %d before the error): %w", deleted, err)
	}
	fmt.Fprintf(c.Stdout, "deleted %d idempotency record(s)\n", deleted)
	return nil
}

func (c *Command) outboxStatus(ctx context.Context, args []string) error {
	f := c.newFlags("outbox status", "[--json]", "Shows the pending outbox rows per topic: how many, how many failing, the oldest's age.")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	pool, closeDB, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	return c.printOutboxStatus(ctx, pool, *asJSON)
}

func (c *Command) printOutboxStatus(ctx context.Context, pool *pgxpool.Pool, asJSON bool) error {
	st, err := outbox.Status(ctx, pool)
	if err != nil {
		return missingTable(err, "outbox")
	}
	if asJSON {
		type row struct {
			Topic            string  `json:"topic"`
			Pending          int64   `json:"pending"`
			Failing          int64   `json:"failing"`
			Stuck            int64   `json:"stuck"`
			Parked           int64   `json:"parked"`
			OldestAgeSeconds float64 `json:"oldest_age_seconds"`
			LastError        string  `json:"last_error,omitempty"`
		}
		out := []row{}
		for _, s := range st {
			out = append(out, row{s.Topic, s.Pending, s.Failing, s.Stuck, s.Parked, s.OldestAge.Seconds(), s.LastError})
		}
		return writeJSON(c.Stdout, out)
	}
	if len(st) == 0 {
		fmt.Fprintln(c.Stdout, "outbox: nothing pending")
		return nil
	}
	tw := newTable(c.Stdout)
	fmt.Fprintln(tw, "TOPIC\tPENDING\tFAILING\tSTUCK\tOLDEST\tLAST ERROR")
	for _, s := range st {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", s.Topic, s.Pending, s.Failing, s.Stuck, s.OldestAge.Round(time.Second), dash(short(s.LastError, 100)))
	}
	return tw.Flush()
}

func (c *Command) outboxStuck(ctx context.Context, args []string) error {
	f := c.newFlags("outbox stuck", "[--older-than 15m] [--limit N] [--json]",
		"Lists the outbox rows that block their ordering key: pending rows whose publish failed and that\n"+
			"are older than --older-than, and parked rows. Act on one with \"outbox retry ID\" or \"outbox park ID\".")
	olderThan := f.Duration("older-than", outbox.DefaultStuckAfter, "list failing rows written longer ago than this")
	limit := f.Int("limit", 100, "list at most N rows")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *olderThan < 0 {
		return f.usagef("--older-than must not be negative")
	}
	if *limit <= 0 {
		return f.usagef("--limit must be positive")
	}
	pool, closeDB, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	rows, err := outbox.Stuck(ctx, pool, *olderThan, *limit)
	if err != nil {
		return missingTable(err, "outbox")
	}
	if *asJSON {
		type row struct {
			ID             int64   `json:"id"`
			Topic          string  `json:"topic"`
			OrderingKey    string  `json:"ordering_key"`
			Attempts       int     `json:"attempts"`
			AgeSeconds     float64 `json:"age_seconds"`
			RetryInSeconds float64 `json:"retry_in_seconds"`
			Parked         bool    `json:"parked"`
			Blocked        int64   `json:"blocked"`
			LastError      string  `json:"last_error,omitempty"`
		}
		out := []row{}
		for _, r := range rows {
			out = append(out, row{r.ID, r.Topic, r.OrderingKey, r.Attempts, r.Age.Seconds(), r.RetryIn.Seconds(), r.Parked, r.Blocked, r.LastError})
		}
		return writeJSON(c.Stdout, out)
	}
	if len(rows) == 0 {
		fmt.Fprintln(c.Stdout, "outbox: no stuck rows")
		return nil
	}
	tw := newTable(c.Stdout)
	fmt.Fprintln(tw, "ID\tTOPIC\tKEY\tATTEMPTS\tAGE\tNEXT TRY\tBLOCKED\tLAST ERROR")
	for _, r := range rows {
		next := "parked"
		if !r.Parked {
			next = "in " + max(r.RetryIn, 0).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", r.ID, r.Topic, dash(r.OrderingKey), r.Attempts,
			r.Age.Round(time.Second), next, r.Blocked, dash(short(r.LastError, 100)))
	}
	return tw.Flush()
}

func (c *Command) outboxRetry(ctx context.Context, args []string) error {
	return c.outboxRowAction(ctx, args, "outbox retry",
		"Makes a pending outbox row due now: ends its backoff and unparks it. A relay publishes it on its\n"+
			"next pass, still in its key's order.", outbox.Retry, "due now")
}

func (c *Command) outboxPark(ctx context.Context, args []string) error {
	return c.outboxRowAction(ctx, args, "outbox park",
		"Parks a pending outbox row: relays stop retrying it. It stays pending and keeps blocking the later\n"+
			"rows of its ordering key (parking never reorders a key); \"outbox retry ID\" unparks it.", outbox.Park, "parked")
}

func (c *Command) outboxRowAction(ctx context.Context, args []string, name, summary string, act func(context.Context, postgres.Querier, int64) error, done string) error {
	f := c.newFlags(name, "ID", summary)
	arg, err := f.parseOne(args, "row ID")
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return f.usagef("row ID %q is not a positive integer", arg)
	}
	pool, closeDB, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := act(ctx, pool, id); err != nil {
		return missingTable(err, "outbox")
	}
	fmt.Fprintf(c.Stdout, "outbox: row %d %s\n", id, done)
	return nil
}

func (c *Command) outboxFlush(ctx context.Context, args []string) error {
	f := c.newFlags("outbox flush", "[--limit N]",
		"Publishes pending outbox rows now, pass after pass, until none is left, no pass makes progress\n"+
			"(every remaining key is failing) or --limit rows were published. Per-key order is kept and\n"+
			"running relays are not disturbed (see package outbox).")
	limit := f.Int("limit", 0, "publish at most N rows (0: no limit)")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *limit < 0 {
		return f.usagef("--limit must not be negative")
	}
	if _, _, err := f.database(); err != nil {
		return err
	}
	if _, err := f.projectID(); err != nil {
		return err
	}
	pool, closeDB, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	client, _, err := f.openPubSub(ctx, true)
	if err != nil {
		return err
	}
	defer client.Close()
	pub := messaging.NewPubSub(client)
	defer pub.Stop()
	var published, failed, passes int
	if *limit == 0 {
		// What the relay service does each run (functions/relay).
		relay, err := outbox.NewRelay(outbox.Config{Pool: pool, Publisher: pub, PublishTimeout: f.timeout})
		if err != nil {
			return err
		}
		st, err := relay.Drain(ctx)
		passes, published, failed = 1, st.Published, st.Failed
		if err != nil {
			return fmt.Errorf("outbox flush after %d row(s): %w", published, missingTable(err, "outbox"))
		}
	}
	for *limit > 0 && published < *limit {
		batch := outbox.DefaultBatchSize
		if *limit > 0 {
			batch = min(batch, *limit-published)
		}
		relay, err := outbox.NewRelay(outbox.Config{Pool: pool, Publisher: pub, BatchSize: batch, PublishTimeout: f.timeout})
		if err != nil {
			return err
		}
		st, err := relay.PublishPending(ctx)
		passes++
		published += st.Published
		failed += st.Failed
		if err != nil {
			return fmt.Errorf("outbox flush after %d row(s): %w", published, missingTable(err, "outbox"))
		}
		if st.Claimed == 0 || st.Published == 0 {
			break
		}
	}
	fmt.Fprintf(c.Stdout, "outbox: published %d row(s) in %d pass(es), %d failed publish attempt(s)\n", published, passes, failed)
	st, err := outbox.Status(ctx, pool)
	if err != nil {
		return err
	}
	var pending, failing int64
	for _, s := range st {
		pending += s.Pending
		failing += s.Failing
	}
	if pending == 0 {
		fmt.Fprintln(c.Stdout, "outbox: nothing pending")
		return nil
	}
	fmt.Fprintf(c.Stdout, "outbox: %d row(s) still pending (%d failing):\n", pending, failing)
	if err := c.printOutboxStatus(ctx, pool, false); err != nil {
		return err
	}
	if failing > 0 {
		return errIncomplete
	}
	return nil
}
