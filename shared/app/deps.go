package app

import (
	"context"
	"fmt"
	"log/slog"

	"cloud.google.com/go/pubsub/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/parking"
	"example.com/platform/shared/postgres"
)

// Deps are the connections a function shares between requests. Fields are
// nil when the function's Needs did not ask for them.
type Deps struct {
	Env         Env
	Logger      *slog.Logger
	DB          *pgxpool.Pool
	PubSub      *pubsub.Client
	Publisher   *messaging.PubSub
	Relay       *outbox.Relay
	Idempotency *idempotency.Store
	DeadLetter  *deadletter.Publisher

	closers []func()
}

// Open connects everything needs asks for: PostgreSQL (with
// env.Database.Migrate it applies the kernel's idempotency, outbox and
// parking migrations, then needs.Migrations, which is safe from every
// instance at once; otherwise it checks they are all applied, in one
// query, and fails with postgres.ErrNotMigrated, a transient error, when
// they are not), Pub/Sub with a publisher (created while PostgreSQL
// connects), an outbox relay, the idempotency store and the dead-letter
// publisher. On error it closes what it opened.
func Open(ctx context.Context, env Env, needs Needs, logger *slog.Logger) (_ *Deps, err error) {
	if logger == nil {
		logger = NewLogger(nil, env)
	}
	d := &Deps{Env: env, Logger: logger}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	// A cold start pays for both; neither waits for the other.
	var (
		client  *pubsub.Client
		dialErr = make(chan error, 1)
	)
	if needs.PubSub {
		go func() {
			var err error
			client, err = NewPubSub(ctx, env.Project)
			dialErr <- err
		}()
	} else {
		dialErr <- nil
	}
	var pool *pgxpool.Pool
	if needs.Database {
		var closeDB func()
		pool, closeDB, err = OpenDB(ctx, env.Database)
		if err == nil {
			d.DB = pool
			d.closers = append(d.closers, closeDB)
			if env.Database.Migrate {
				err = migrate(ctx, pool, append(kernelMigrations(), needs.Migrations...))
			} else {
				err = checkMigrated(ctx, pool, append(kernelMigrations(), needs.Migrations...))
			}
		}
	}
	if perr := <-dialErr; perr != nil && err == nil {
		err = perr
	}
	if client != nil {
		d.PubSub = client
		d.closers = append(d.closers, func() { client.Close() })
	}
	if err != nil {
		return nil, err
	}
	if d.PubSub != nil {
		d.Publisher = messaging.NewPubSub(d.PubSub)
		d.closers = append(d.closers, d.Publisher.Stop)
		d.DeadLetter = &deadletter.Publisher{Topic: env.DeadLetterTopic, Messages: d.Publisher}
	}
	if pool != nil {
		if d.Idempotency, err = idempotency.New(pool, idempotency.Config{}); err != nil {
			return nil, err
		}
		if d.Publisher != nil {
			if d.Relay, err = outbox.NewRelay(outbox.Config{Pool: pool, Publisher: d.Publisher, Logger: logger}); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// Close releases every connection, in reverse order of opening.
func (d *Deps) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// PublishAfterCommit publishes the outbox rows ids right after their
// transaction committed, through the relay's per-key ordering rules. Without
// a relay (no Pub/Sub) it does nothing and the rows wait for one.
func (d *Deps) PublishAfterCommit(ctx context.Context, ids ...int64) error {
	if d.Relay == nil {
		return nil
	}
	_, err := d.Relay.PublishAfterCommit(ctx, ids...)
	return err
}

// OnClose adds fn to what Close runs (before what Open opened), for
// resources a function opens on top of Deps, such as a warehouse sink.
func (d *Deps) OnClose(fn func()) { d.closers = append(d.closers, fn) }

// LeaseDuration is the default lease of lease-mode idempotency: longer
// than any single attempt of the function (its timeout), so a live holder
// keeps it. IDEMPOTENCY_LEASE overrides it (Env.Lease).
const LeaseDuration = handler.DefaultLease

// Handler builds the push endpoint of consumer c on d: the consumer name
// (Env.Function), logger, dead-letter publisher, idempotency store, lease
// (Env.Lease) and publisher after commit come from d unless cfg sets them.
func (d *Deps) Handler(c handler.Consumer, cfg handler.Config) (*handler.Handler, error) {
	if cfg.Consumer == "" {
		cfg.Consumer = d.Env.Function
	}
	if cfg.Logger == nil {
		cfg.Logger = d.Logger
	}
	if cfg.DeadLetter == nil && !c.IsRaw() {
		cfg.DeadLetter = d.DeadLetter
	}
	if d.Idempotency != nil {
		if cfg.TxStore == nil {
			cfg.TxStore = d.Idempotency
		}
		if cfg.LeaseStore == nil {
			cfg.LeaseStore = d.Idempotency
		}
	}
	if cfg.Lease == 0 {
		cfg.Lease = d.Env.Lease
	}
	if cfg.Publish == nil && d.Relay != nil {
		cfg.Publish = d.PublishAfterCommit
	}
	return handler.New(cfg, c)
}

// kernelMigrations is the kernel's schema: idempotency records, the
// outbox and parked keys, in the order they are applied.
func kernelMigrations() []Migration {
	return []Migration{
		{Name: idempotency.Component, FS: idempotency.Migrations()},
		{Name: outbox.Component, FS: outbox.Migrations()},
		{Name: parking.Component, FS: parking.Migrations()},
	}
}

// migrate applies the schemas of ms, in order, as their owner.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []Migration) error {
	for _, m := range ms {
		if err := m.apply(ctx, pool); err != nil {
			return fmt.Errorf("migrate %s: %w", m.Name, err)
		}
	}
	return nil
}

// checkMigrated returns an error wrapping postgres.ErrNotMigrated when pool
// lacks a migration of ms. It reads every version table in one query.
func checkMigrated(ctx context.Context, pool *pgxpool.Pool, ms []Migration) error {
	schemas := make([]postgres.Schema, len(ms))
	for i, m := range ms {
		fsys, err := m.files()
		if err != nil {
			return err
		}
		schemas[i] = postgres.Schema{Component: m.Name, FS: fsys}
	}
	return postgres.CheckAllMigrated(ctx, pool, schemas...)
}
