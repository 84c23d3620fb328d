package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/manifest"
	"example.com/platform/shared/parking"
	"example.com/platform/shared/postgres"
)

// Function describes one deployable function or HTTP service for Register.
// Everything else (reading and checking the environment, opening
// PostgreSQL and Pub/Sub, migrating, the push chain, closing on error,
// building on the first request) is Register's.
type Function struct {
	// Manifest is the function's function.yaml, embedded by its package
	// (//go:embed function.yaml). Register takes the entry point, the kind,
	// the idempotency mode and the use of the database from it.
	Manifest []byte
	// Vars are the function's own environment variables, checked with the
	// common ones before anything is opened.
	Vars []Var
	// Migrations are the function's schema (goose files), after the
	// kernel's (idempotency and outbox). tools/cmd/migrate applies them as
	// the schema's owner before a deploy; at start a function only checks
	// they are applied, unless DB_MIGRATE=true (local stack, tests) makes
	// it apply them. Each Name is a component with its own version table.
	Migrations []Migration
	// Handler configures the push chain of an event function (Retry,
	// MaxBody). Its Timeout is the manifest's resources.handler_timeout,
	// checked there against the ack deadlines; the consumer name, logger,
	// stores, dead-letter publisher, lease and publisher come from Deps.
	Handler handler.Config
	// Consumer is an event function's domain function (kind cloudevent),
	// made by Transactional, Lease, Stateless or Raw.
	Consumer Consumer
	// Serve builds an HTTP service (kind http) on the opened dependencies.
	Serve func(ctx context.Context, d *Deps) (http.Handler, error)
}

// Migration is one component's schema: the *.sql files of FS (in its
// folder Dir, when set), applied in name order by postgres.Migrate under
// Name.
type Migration struct {
	Name string
	FS   fs.FS
	Dir  string
}

func (m Migration) files() (fs.FS, error) {
	if m.Dir == "" {
		return m.FS, nil
	}
	return fs.Sub(m.FS, m.Dir)
}

func (m Migration) apply(ctx context.Context, pool *pgxpool.Pool) error {
	fsys, err := m.files()
	if err != nil {
		return err
	}
	return postgres.Migrate(ctx, pool, m.Name, fsys)
}

// Consumer is an event function's domain function and the service it is a
// method of: Register builds the service once per process, on the opened
// dependencies, then serves the method. Its mode (the manifest's
// idempotency) follows from the method's type.
type Consumer struct {
	mode  string
	raw   bool
	build func(ctx context.Context, d *Deps) (handler.Consumer, error)
}

// Transactional is the consumer of handle, a method of the service that
// newService builds, in transactional mode (see handler.TxFunc). Pass a
// method expression: app.Transactional(newService, (*Service).Handle).
func Transactional[S any, T events.Payload](newService func(context.Context, *Deps) (S, error), handle func(S, context.Context, pgx.Tx, handler.Event[T]) ([]handler.Out, error)) Consumer {
	return Consumer{mode: manifest.IdempotencyTransactional, build: func(ctx context.Context, d *Deps) (handler.Consumer, error) {
		s, err := newService(ctx, d)
		if err != nil {
			return handler.Consumer{}, err
		}
		return handler.Transactional(func(ctx context.Context, tx pgx.Tx, ev handler.Event[T]) ([]handler.Out, error) {
			return handle(s, ctx, tx, ev)
		}), nil
	}}
}

// Lease is the consumer of handle in lease mode (see handler.LeaseFunc).
func Lease[S any, T events.Payload](newService func(context.Context, *Deps) (S, error), handle func(S, context.Context, *handler.Claim, handler.Event[T]) ([]byte, error)) Consumer {
	return Consumer{mode: manifest.IdempotencyLease, build: func(ctx context.Context, d *Deps) (handler.Consumer, error) {
		s, err := newService(ctx, d)
		if err != nil {
			return handler.Consumer{}, err
		}
		return handler.Lease(func(ctx context.Context, c *handler.Claim, ev handler.Event[T]) ([]byte, error) {
			return handle(s, ctx, c, ev)
		}), nil
	}}
}

// Stateless is the consumer of handle with no idempotency layer (see
// handler.StatelessFunc).
func Stateless[S any, T events.Payload](newService func(context.Context, *Deps) (S, error), handle func(S, context.Context, handler.Event[T]) error) Consumer {
	return Consumer{mode: manifest.IdempotencyNone, build: func(ctx context.Context, d *Deps) (handler.Consumer, error) {
		s, err := newService(ctx, d)
		if err != nil {
			return handler.Consumer{}, err
		}
		return handler.Stateless(func(ctx context.Context, ev handler.Event[T]) error { return handle(s, ctx, ev) }), nil
	}}
}

// Raw is the consumer of handle for every push, decodable or not, with no
// dead-lettering (see handler.RawFunc): for the dead-letter archive.
func Raw[S any](newService func(context.Context, *Deps) (S, error), handle func(S, context.Context, *events.Incoming, error) error) Consumer {
	return Consumer{mode: manifest.IdempotencyNone, raw: true, build: func(ctx context.Context, d *Deps) (handler.Consumer, error) {
		s, err := newService(ctx, d)
		if err != nil {
			return handler.Consumer{}, err
		}
		return handler.Raw(func(ctx context.Context, in *events.Incoming, decodeErr error) error {
			return handle(s, ctx, in, decodeErr)
		}), nil
	}}
}

// Registered is a function registered with Register: the http.Handler the
// Functions Framework serves under its entry point.
type Registered struct {
	f        Function
	manifest *manifest.Manifest
	lazy     *Lazy
	serve    http.Handler
}

// ErrRegistration wraps every error of New: a Function that does not agree
// with its manifest.
var ErrRegistration = errors.New("app: function registration")

// New checks f against its manifest and returns it ready to serve, without
// registering it with the Functions Framework (Register does both).
func New(f Function) (*Registered, error) {
	m, err := manifest.Parse(bytes.NewReader(f.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%w: function.yaml: %w", ErrRegistration, err)
	}
	fail := func(format string, args ...any) (*Registered, error) {
		return nil, fmt.Errorf("%w: %s (entry point %q): %s", ErrRegistration, m.Name, m.EntryPoint, fmt.Sprintf(format, args...))
	}
	if m.EntryPoint == "" {
		return fail("function.yaml has no entry_point")
	}
	switch m.Kind {
	case manifest.KindHTTP:
		if f.Serve == nil || f.Consumer.build != nil {
			return fail("kind http needs Serve and no Consumer")
		}
	case manifest.KindCloudEvent:
		if f.Consumer.build == nil || f.Serve != nil {
			return fail("kind cloudevent needs a Consumer (app.Transactional, Lease, Stateless or Raw) and no Serve")
		}
		if m.Idempotency != f.Consumer.mode {
			return fail("function.yaml says idempotency: %s but the consumer's function is of %s mode; change the manifest or the function's signature", m.Idempotency, f.Consumer.mode)
		}
		if f.Consumer.mode != manifest.IdempotencyNone && !m.Database {
			return fail("idempotency %s keeps its records in PostgreSQL: set database: true in function.yaml", f.Consumer.mode)
		}
		for _, s := range m.Consumes {
			if s.Ordering && !m.Database {
				return fail("consumes %s with ordering: true: a dead letter parks its ordering key in PostgreSQL: set database: true in function.yaml", s.Topic)
			}
		}
		if f.Handler.Timeout != 0 {
			return fail("the handler's timeout is resources.handler_timeout in function.yaml, not Handler.Timeout")
		}
		secs, err := manifest.Seconds(m.Resources.HandlerTimeout)
		if err != nil || secs < 1 {
			return fail("function.yaml: resources.handler_timeout %q must be whole seconds", m.Resources.HandlerTimeout)
		}
		f.Handler.Timeout = time.Duration(secs) * time.Second
	default:
		return fail("unknown kind %q", m.Kind)
	}
	if len(f.Migrations) > 0 && !m.Database {
		return fail("migrations need database: true in function.yaml")
	}
	r := &Registered{f: f, manifest: m}
	r.lazy = NewLazy(func(ctx context.Context) (http.Handler, error) { return r.Build(ctx, nil) }, nil)
	r.serve = r.lazy
	if m.Kind == manifest.KindHTTP {
		r.serve = WithHealthz(r.lazy)
	}
	return r, nil
}

// Register checks f against its manifest (see New) and registers it with
// the Functions Framework under the manifest's entry point, built from the
// environment on its first request. A package calls it once, from a
// package-level variable or init. A Function that disagrees with its
// manifest is a programming error: Register panics with New's error, so
// the mistake fails the function's tests and its start, never a delivery.
func Register(f Function) *Registered {
	r, err := New(f)
	if err != nil {
		panic(err)
	}
	functions.HTTP(r.manifest.EntryPoint, r.ServeHTTP)
	return r
}

// EntryPoint is the manifest's entry point.
func (r *Registered) EntryPoint() string { return r.manifest.EntryPoint }

// Needs is what the function requires from its environment: PostgreSQL
// when the manifest says database: true (and its Migrations), Pub/Sub when
// it publishes or dead-letters, and its Vars.
func (r *Registered) Needs() Needs {
	pubsub := len(r.manifest.Publishes) > 0
	if r.manifest.Kind == manifest.KindCloudEvent && !r.f.Consumer.raw {
		pubsub = true // permanent failures are dead-lettered
	}
	return Needs{Database: r.manifest.Database, PubSub: pubsub, Vars: r.f.Vars, Migrations: r.f.Migrations}
}

// Build reads the environment from getenv (os.Getenv when nil), opens what
// the function needs, migrates the schema when DB_MIGRATE=true or else
// checks it is migrated (an unmigrated schema is a transient error wrapping
// postgres.ErrNotMigrated: "schema not migrated: run migrate up"; the
// request answers 503 and the next one tries again), and returns its
// handler. Configuration
// errors wrap ErrConfig and list everything missing at once. On error
// everything opened is closed.
func (r *Registered) Build(ctx context.Context, getenv func(string) string) (_ http.Handler, err error) {
	needs := r.Needs()
	env, err := LoadEnv(getenv, needs)
	if err != nil {
		return nil, err
	}
	d, err := Open(ctx, env, needs, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	var h http.Handler
	if r.f.Serve != nil {
		if h, err = r.f.Serve(ctx, d); err != nil {
			return nil, err
		}
	} else {
		c, err := r.f.Consumer.build(ctx, d)
		if err != nil {
			return nil, err
		}
		cfg := r.f.Handler
		if cfg.Ordering == nil {
			cfg.Ordering = r.ordering()
		}
		if len(cfg.Ordering) > 0 && cfg.Parking == nil {
			cfg.Parking = parking.New(d.DB)
		}
		if h, err = d.Handler(c, cfg); err != nil {
			return nil, err
		}
	}
	d.Logger.Info(r.manifest.Name+" ready", "entry_point", r.manifest.EntryPoint)
	return h, nil
}

// ordering is the handler's Ordering: the subscriptions the manifest
// consumes with ordering: true.
func (r *Registered) ordering() map[string]handler.OrderedSubscription {
	var o map[string]handler.OrderedSubscription
	for _, s := range r.manifest.Consumes {
		if !s.Ordering {
			continue
		}
		if o == nil {
			o = map[string]handler.OrderedSubscription{}
		}
		o[manifest.SubscriptionID(r.manifest.Name, s.Topic)] = handler.OrderedSubscription{Topic: s.Topic, MaxDeliveryAttempts: s.MaxDeliveryAttempts}
	}
	return o
}

// Migrate applies the kernel's migrations (idempotency, outbox) and the
// function's, in order, to pool, as its owner. For tests; Build does it at
// start only with DB_MIGRATE=true. It is safe to run from several
// processes at once.
func (r *Registered) Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return migrate(ctx, pool, r.Migrations())
}

// Migrations are the components the function's schema consists of, in
// the order they are applied: the kernel's, then Function.Migrations.
func (r *Registered) Migrations() []Migration {
	return append(kernelMigrations(), r.f.Migrations...)
}

// ServeHTTP serves the handler built from the environment on the first
// request (see Lazy). An HTTP service answers GET /healthz itself (see
// WithHealthz).
func (r *Registered) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.serve.ServeHTTP(w, req) }

// HealthzPath is the liveness endpoint of HTTP services.
const HealthzPath = "/healthz"

// WithHealthz answers GET HealthzPath with 200 {"status":"ok"} and hands
// every other request to h: liveness depends on no configuration and no
// dependency, so a service waiting for its database is not restarted.
func WithHealthz(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == HealthzPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				io.WriteString(w, `{"status":"ok"}`+"\n")
			}
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Reset forgets the built handler, so the next request builds again from
// the environment as it is then (see Lazy.Reset). For tests.
func (r *Registered) Reset() { r.lazy.Reset() }
