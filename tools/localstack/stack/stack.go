// Package stack starts the whole system on one machine: a Pub/Sub server
// (pstest) on a local gRPC port, PostgreSQL, every function and the fake
// payment gateway as separate OS processes, the push dispatcher between
// them, and BigQuery through an emulator when one is installed (otherwise
// the analytics sinks write JSON lines to local files).
//
// `make dev` (tools/cmd/dev), `make demo` and the end-to-end tests call
// Start and get the addresses back; Stop tears everything down.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"example.com/platform/shared/manifest"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/tools/localstack/dispatch"
	"example.com/platform/tools/migrate"
)

// Defaults for zero Options fields.
const (
	DefaultProject      = "local-project"
	DefaultDatabase     = "platform"
	DefaultDataset      = "analytics"
	DefaultGrace        = 5 * time.Second
	DefaultStartTimeout = 3 * time.Minute
	// GatewayName is the process name of the fake payment gateway.
	GatewayName = "fakegateway"
	// BigQueryEmulatorBinary is the program looked up on PATH
	// (github.com/goccy/bigquery-emulator v0.6.6).
	BigQueryEmulatorBinary = "bigquery-emulator"
	// LocalSecret is the value every secret_env variable gets locally.
	LocalSecret = "local-dev-secret"
)

// Sentinel errors.
var (
	ErrNoRoot         = errors.New("stack: repository root not found (no topics.yaml above the working directory)")
	ErrUnknownProcess = errors.New("stack: unknown process")
	ErrNoCommand      = errors.New("stack: function has no cmd/ folder to run")
	ErrStopped        = errors.New("stack: stopped")
)

// Program is an extra process started beside the functions.
type Program struct {
	// Name is the process name (log prefix, Kill/Restart key).
	Name string
	// Module is the Go module directory, relative to the repository root.
	Module string
	// Package is the main package inside Module, e.g. "./cmd/fakegateway".
	Package string
	// Env is added to the process environment.
	Env map[string]string
	// Ready is the path polled with GET until it answers; default "/".
	Ready string
}

// Options configure Start. Every zero value is a sane default.
type Options struct {
	// Root is the repository root; default: the nearest directory above the
	// working directory that holds topics.yaml.
	Root string
	// Project is the Google Cloud project id the functions see.
	Project string
	// ExtraFunctions are function folders outside functions/ (relative to
	// Root), such as the README's worked example, started like the
	// repository's own.
	ExtraFunctions []string
	// Functions limits the functions started (by manifest name); default
	// every manifest. A subscription whose consumer is not started is not
	// dispatched (its messages wait on the server).
	Functions []string
	// Programs are extra processes; nil means the fake payment gateway
	// (tools/cmd/fakegateway) when the repository has it.
	Programs []Program
	// DatabaseURL is the PostgreSQL database the functions share; default
	// $DATABASE_URL, else a throwaway cluster (removed by Stop) with a
	// database named DefaultDatabase.
	DatabaseURL string
	// PubSubPort is the pstest gRPC port; 0 picks a free one.
	PubSubPort int
	// BackoffScale and Duplicate configure the dispatcher (see
	// dispatch.Config); 0 is the manifests' real backoff.
	BackoffScale float64
	Duplicate    bool
	// Env adds or overrides environment variables per process name.
	Env map[string]map[string]string
	// Log receives the merged, prefixed output of every process and the
	// stack's own messages; default os.Stderr.
	Log io.Writer
	// Grace is the wait between SIGTERM and SIGKILL.
	Grace time.Duration
	// StartTimeout bounds building and starting everything.
	StartTimeout time.Duration
	// WorkDir holds binaries and local sink files; default a temporary
	// directory removed by Stop.
	WorkDir string
	// NoBigQueryEmulator ignores a bigquery-emulator found on PATH.
	NoBigQueryEmulator bool
	// Observer, when set, sees every push of the dispatcher
	// (dispatch.Config.Observer): called synchronously from many goroutines.
	Observer func(dispatch.Event)
	// ScheduleEvery, when positive, calls every HTTP service's schedules
	// (the outbox relay's) at this interval, as Cloud Scheduler does with
	// the manifests' cron; zero leaves it to RunSchedules.
	ScheduleEvery time.Duration
	// Fault, when set, is the dispatcher's fault injection hook
	// (dispatch.Config.Fault); the chaos run sets it.
	Fault func(dispatch.Push) dispatch.Fault
	// PubSubFault, when set, puts a gRPC proxy between each function and
	// the Pub/Sub server (its PUBSUB_EMULATOR_HOST points at it) that
	// calls PubSubFault before forwarding each call (process is the
	// function's name, method the full gRPC method, e.g.
	// "/google.pubsub.v1.Publisher/Publish"): it may sleep to slow the
	// call and return a gRPC status error to fail it. (A pstest reactor
	// cannot slow a call: it runs under the server's lock.) The stack's
	// own client and dispatcher bypass it.
	PubSubFault func(ctx context.Context, process, method string) error
	// DatabaseSettings are set on the database for every new session
	// (ALTER DATABASE ... SET name = 'value') before any function starts,
	// e.g. idle_in_transaction_session_timeout.
	DatabaseSettings map[string]string
	// SkipMissing skips, with a warning, functions whose folder has no cmd/
	// yet (their subscriptions are not dispatched) instead of failing.
	SkipMissing bool
}

// Stack is a running local system. Its methods are safe for concurrent use.
type Stack struct {
	// PubSubAddr is host:port of the pstest server (PUBSUB_EMULATOR_HOST).
	PubSubAddr string
	// Project is the project id of every resource.
	Project string
	// DatabaseURL connects to the database the functions share, as its
	// owner (the role that ran the migrations).
	DatabaseURL string
	// DatabaseRoles is each database function's own login role
	// (migrate.LocalRole), granted what its manifest's tables: declare;
	// the function connects as it (FunctionDatabaseURL).
	DatabaseRoles map[string]string
	// BigQueryHost is the emulator's host:port, or "" when the analytics
	// sinks write JSON lines (see SinkFiles).
	BigQueryHost string
	// SinkFiles are the JSON-lines files of the BigQuery functions, by
	// function name, when no emulator runs.
	SinkFiles map[string]string
	// WorkDir holds the built binaries and sink files.
	WorkDir string
	// Repo and Plan are the manifests and the Pub/Sub resources created.
	Repo *manifest.Repo
	Plan *dispatch.Plan
	// Server is the in-process Pub/Sub server and Client a v2 client of it.
	Server *pstest.Server
	Client *pubsub.Client
	// Counter counts publishes per topic (dispatch.PublishCounter).
	Counter *dispatch.PublishCounter
	// Dispatcher pushes messages to the functions.
	Dispatcher *dispatch.Dispatcher

	opts     Options
	log      io.Writer
	logMu    *sync.Mutex
	logger   *slog.Logger
	procs    map[string]*process
	order    []string
	conn     *grpc.ClientConn
	cancel   context.CancelFunc
	runDone  chan struct{}
	ownsPG   bool
	pg       *pgtest.Cluster
	proxies  map[string]*grpc.Server // Pub/Sub fault proxies by function
	proxyAdr map[string]string
	ownsWork bool
	stopOnce sync.Once
	stopErr  error
	warnings []string
}

// FindRoot returns the nearest directory at or above dir that holds
// topics.yaml.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "topics.yaml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoRoot
		}
		dir = parent
	}
}

// Start builds and starts everything and returns when every process answers
// and the dispatcher runs. ctx bounds the start only (Ctrl-C during start);
// on any failure everything started so far is stopped and removed. Call
// Stop when done.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.Project == "" {
		opts.Project = DefaultProject
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	if opts.Root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if opts.Root, err = FindRoot(wd); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	s := &Stack{Project: opts.Project, opts: opts, log: opts.Log, logMu: &sync.Mutex{}, procs: map[string]*process{}, SinkFiles: map[string]string{}}
	s.logger = slog.New(slog.NewTextHandler(newPrefixWriter("stack", 12, s.logMu, s.log), nil))
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()

	if s.Repo, err = manifest.LoadRepo(opts.Root); err != nil {
		return nil, fmt.Errorf("load manifests: %w", err)
	}
	for _, dir := range opts.ExtraFunctions {
		m, err := manifest.LoadFile(filepath.Join(opts.Root, dir, "function.yaml"))
		if err == nil {
			err = m.Validate(&s.Repo.Topics)
		}
		if err != nil {
			return nil, fmt.Errorf("load extra function %s: %w", dir, err)
		}
		s.Repo.Functions = append(s.Repo.Functions, m)
	}
	// Unknown names fail before anything starts (the database step below
	// would otherwise be the first to fail).
	for _, f := range opts.Functions {
		if s.Repo.Function(f) == nil {
			return nil, fmt.Errorf("%w: %s has no manifest", ErrUnknownProcess, f)
		}
	}
	if s.Plan, err = dispatch.PlanRepo(s.Repo); err != nil {
		return nil, fmt.Errorf("plan subscriptions: %w", err)
	}
	if opts.WorkDir == "" {
		if s.WorkDir, err = os.MkdirTemp("", "localstack-"); err != nil {
			return nil, err
		}
		s.ownsWork = true
	} else {
		s.WorkDir = opts.WorkDir
		if err := os.MkdirAll(s.WorkDir, 0o755); err != nil {
			return nil, err
		}
	}

	if err := s.startPubSub(ctx); err != nil {
		return nil, err
	}
	if err := s.startDatabase(ctx); err != nil {
		return nil, err
	}
	if err := s.applyDatabaseSettings(ctx); err != nil {
		return nil, err
	}
	if err := s.startProcesses(ctx); err != nil {
		return nil, err
	}
	if err := s.startDispatcher(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stack) startPubSub(ctx context.Context) error {
	s.Counter = dispatch.NewPublishCounter()
	s.Server = pstest.NewServerWithAddress(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.opts.PubSubPort)), s.Counter.ServerOption())
	s.PubSubAddr = s.Server.Addr
	conn, err := grpc.NewClient(s.PubSubAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial pubsub: %w", err)
	}
	s.conn = conn
	if s.Client, err = pubsub.NewClient(ctx, s.Project, option.WithGRPCConn(conn)); err != nil {
		return fmt.Errorf("pubsub client: %w", err)
	}
	if err := dispatch.Provision(ctx, s.Client, s.Plan); err != nil {
		return fmt.Errorf("provision pubsub: %w", err)
	}
	return nil
}

func (s *Stack) startDatabase(ctx context.Context) error {
	dsn := s.opts.DatabaseURL
	if dsn == "" {
		dsn = os.Getenv("DATABASE_URL")
	}
	if dsn != "" {
		s.DatabaseURL = dsn
		return s.setupSchema(ctx)
	}
	s.logf("no DATABASE_URL: starting a throwaway PostgreSQL cluster")
	s.ownsPG = true
	c, err := pgtest.Start()
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	s.pg = c
	conn, err := pgx.Connect(ctx, c.AdminURL)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+DefaultDatabase); err != nil {
		return fmt.Errorf("postgres: create database: %w", err)
	}
	u, err := url.Parse(c.AdminURL)
	if err != nil {
		return fmt.Errorf("postgres: admin url: %w", err)
	}
	u.Path = "/" + DefaultDatabase
	s.DatabaseURL = u.String()
	return s.setupSchema(ctx)
}

// setupSchema is the deploy's migrate step, locally (tools/migrate.Setup):
// as the database's owner it creates one login role per database function,
// applies every migration and grants each role its manifest's tables.
// Functions then start as their own role, without DB_MIGRATE, so they
// check the schema as in production.
func (s *Stack) setupSchema(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, s.DatabaseURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	var out strings.Builder
	roles, err := migrate.Setup(ctx, pool, s.opts.Root, s.Repo.Functions, &out)
	if err != nil {
		return fmt.Errorf("migrate (as the owner; an external DATABASE_URL's user needs CREATEROLE): %w\n%s", err, out.String())
	}
	for _, role := range roles {
		if _, err := migrate.RoleURL(s.DatabaseURL, role); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	s.DatabaseRoles = roles
	s.logf("migrated; database roles %v", roles)
	return nil
}

// FunctionDatabaseURL is the database URL function name connects with: its
// own role's, or the owner's when it has none.
func (s *Stack) FunctionDatabaseURL(name string) string {
	role, ok := s.DatabaseRoles[name]
	if !ok {
		return s.DatabaseURL
	}
	u, err := migrate.RoleURL(s.DatabaseURL, role)
	if err != nil {
		return s.DatabaseURL
	}
	return u
}

// spec is a process to build and run.
type spec struct {
	name, module, pkg, ready string
	env                      map[string]string
}

func (s *Stack) specs() ([]spec, error) {
	var out []spec
	want := map[string]bool{}
	for _, f := range s.opts.Functions {
		if s.Repo.Function(f) == nil {
			return nil, fmt.Errorf("%w: %s has no manifest", ErrUnknownProcess, f)
		}
		want[f] = true
	}
	programs := s.opts.Programs
	if programs == nil {
		if _, err := os.Stat(filepath.Join(s.opts.Root, "tools", "cmd", "fakegateway")); err == nil {
			programs = []Program{{Name: GatewayName, Module: "tools", Package: "./cmd/fakegateway"}}
		} else {
			s.warn("tools/cmd/fakegateway not found: no payment gateway runs; payments will fail")
		}
	}
	ports := map[string]int{}
	for _, p := range programs {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[p.Name] = port
		ready := p.Ready
		if ready == "" {
			ready = "/"
		}
		env := map[string]string{"PORT": strconv.Itoa(port), "GOOGLE_CLOUD_PROJECT": s.Project}
		for k, v := range p.Env {
			env[k] = v
		}
		out = append(out, spec{name: p.Name, module: p.Module, pkg: p.Package, ready: ready, env: env})
	}
	var missing []string
	for _, m := range s.Repo.Functions {
		if len(want) > 0 && !want[m.Name] {
			continue
		}
		dir := filepath.Dir(m.Path)
		if _, err := os.Stat(filepath.Join(dir, "cmd")); err != nil {
			missing = append(missing, m.Name)
			continue
		}
		rel, err := filepath.Rel(s.opts.Root, dir)
		if err != nil {
			return nil, err
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		out = append(out, spec{name: m.Name, module: rel, pkg: "./cmd", ready: "/", env: s.functionEnv(m, port, ports)})
	}
	if len(missing) > 0 && s.opts.SkipMissing {
		s.warn("not started (no cmd/ folder): " + strings.Join(missing, ", ") + "; messages for them wait on the server")
	} else if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s (or limit Options.Functions)", ErrNoCommand, strings.Join(missing, ", "))
	}
	return out, nil
}

// functionEnv is what Terraform sets in production (docs/infrastructure.md,
// "Runtime contract"), pointed at the local services.
func (s *Stack) functionEnv(m *manifest.Manifest, port int, ports map[string]int) map[string]string {
	env := map[string]string{
		"PORT":                 strconv.Itoa(port),
		"FUNCTION_TARGET":      m.EntryPoint,
		"FUNCTION_NAME":        m.Name,
		"K_SERVICE":            m.Name,
		"ENV":                  "local",
		"GOOGLE_CLOUD_PROJECT": s.Project,
		"PUBSUB_EMULATOR_HOST": s.functionPubSubAddr(m.Name),
		"DATABASE_URL":         s.FunctionDatabaseURL(m.Name),
	}
	if m.Kind == manifest.KindCloudEvent {
		env["DEAD_LETTER_TOPIC"] = manifest.DeadLetterTopic(m.Name)
	}
	for k, v := range m.Env {
		env[k] = v
	}
	for k := range m.SecretEnv {
		env[k] = LocalSecret
	}
	if gw, ok := ports[GatewayName]; ok {
		for k := range m.Env {
			if strings.HasPrefix(k, "PAYMENT_GATEWAY_") {
				env["PAYMENT_GATEWAY_URL"] = fmt.Sprintf("http://127.0.0.1:%d", gw)
			}
		}
		for k := range m.SecretEnv {
			if strings.HasPrefix(k, "PAYMENT_GATEWAY_") {
				env["PAYMENT_GATEWAY_URL"] = fmt.Sprintf("http://127.0.0.1:%d", gw)
			}
		}
	}
	if m.BigQuery {
		if s.BigQueryHost != "" {
			env["ANALYTICS_SINK"] = "bigquery"
			env["DEADLETTER_SINK"] = "bigquery"
			env["BIGQUERY_EMULATOR_HOST"] = s.BigQueryHost
			env["BIGQUERY_PROJECT"] = s.Project
			env["BIGQUERY_DATASET"] = DefaultDataset
		} else {
			path := filepath.Join(s.WorkDir, m.Name+".jsonl")
			s.SinkFiles[m.Name] = path
			env["ANALYTICS_SINK"] = "jsonl"
			env["ANALYTICS_JSONL_PATH"] = path
			env["DEADLETTER_SINK"] = "jsonl"
			env["DEADLETTER_JSONL_PATH"] = path
		}
	}
	return env
}

func (s *Stack) startProcesses(ctx context.Context) error {
	if !s.opts.NoBigQueryEmulator {
		if err := s.startBigQuery(ctx); err != nil {
			return err
		}
	}
	if s.BigQueryHost == "" {
		s.warn("BigQuery: no " + BigQueryEmulatorBinary + " on PATH: analytics and dead-letter rows go to JSON-lines files in " + s.WorkDir +
			" (install github.com/goccy/bigquery-emulator v0.6.6 to use the real BigQuery client locally)")
	}
	specs, err := s.specs()
	if err != nil {
		return err
	}
	width := 12
	for _, sp := range specs {
		width = max(width, len(sp.name))
	}
	// Build in parallel; the go command shares its cache.
	bin := filepath.Join(s.WorkDir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	s.logf("building %d programs", len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, sp := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = s.build(ctx, sp, filepath.Join(bin, sp.name))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, sp := range specs {
		env := envList(os.Environ(), sp.env)
		env = envList(env, s.opts.Env[sp.name])
		p := &process{name: sp.name, bin: filepath.Join(bin, sp.name), port: mustAtoi(sp.env["PORT"]), env: env, ready: sp.ready,
			log: newPrefixWriter(sp.name, width, s.logMu, s.log)}
		s.procs[sp.name] = p
		s.order = append(s.order, sp.name)
		if err := p.start(); err != nil {
			return err
		}
	}
	for _, name := range s.order {
		if err := s.procs[name].waitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) build(ctx context.Context, sp spec, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, sp.pkg)
	cmd.Dir = filepath.Join(s.opts.Root, sp.module)
	// Every function builds on its own, as Cloud Functions builds it.
	cmd.Env = envList(os.Environ(), map[string]string{"GOWORK": "off"})
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("build %s (%s %s): %w\n%s", sp.name, sp.module, sp.pkg, err, b)
	}
	return nil
}

func (s *Stack) startBigQuery(ctx context.Context) error {
	path, err := exec.LookPath(BigQueryEmulatorBinary)
	if err != nil {
		return nil
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	grpcPort, err := freePort()
	if err != nil {
		return err
	}
	p := &process{name: "bigquery", bin: path, port: port, ready: "/",
		log: newPrefixWriter("bigquery", 12, s.logMu, s.log)}
	p.env = os.Environ()
	p.args = []string{"--project=" + s.Project, "--dataset=" + DefaultDataset, "--port=" + strconv.Itoa(port), "--grpc-port=" + strconv.Itoa(grpcPort)}
	s.procs[p.name] = p
	s.order = append(s.order, p.name)
	if err := p.start(); err != nil {
		return err
	}
	if err := p.waitReady(ctx); err != nil {
		return err
	}
	s.BigQueryHost = fmt.Sprintf("127.0.0.1:%d", port)
	return nil
}

func (s *Stack) startDispatcher() error {
	var subs []dispatch.Subscription
	for _, sub := range s.Plan.WithURLs(s.URL) {
		if sub.URL != "" {
			subs = append(subs, sub)
		}
	}
	d, err := dispatch.New(dispatch.Config{
		Client:       s.Client,
		Counter:      s.Counter,
		BackoffScale: s.opts.BackoffScale,
		Duplicate:    s.opts.Duplicate,
		Observer:     s.opts.Observer,
		Fault:        s.opts.Fault,
		Logger:       slog.New(slog.NewTextHandler(newPrefixWriter("dispatcher", 12, s.logMu, s.log), nil)),
	}, subs)
	if err != nil {
		return err
	}
	s.Dispatcher = d
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.runDone = make(chan struct{})
	go func() {
		defer close(s.runDone)
		if every := s.opts.ScheduleEvery; every > 0 {
			go s.runSchedules(ctx, every)
		}
		_ = d.Run(ctx)
	}()
	return nil
}

// Names returns the names of the processes, in start order.
func (s *Stack) Names() []string { return append([]string(nil), s.order...) }

// URL returns the base URL of a process, or "" for an unknown name.
func (s *Stack) URL(name string) string {
	if p, ok := s.procs[name]; ok {
		return p.url()
	}
	return ""
}

// Running reports whether the named process runs.
func (s *Stack) Running(name string) bool {
	p, ok := s.procs[name]
	return ok && p.running()
}

// Kill stops one process (SIGTERM, then SIGKILL after Options.Grace), as
// when a Cloud Run instance goes away. Its pushes fail and are retried with
// backoff until Restart.
func (s *Stack) Kill(name string) error {
	p, ok := s.procs[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownProcess, name)
	}
	s.logf("killing %s", name)
	return p.stop(s.opts.Grace)
}

// Restart starts a killed process again on the same port and waits until it
// answers; a running process is killed first.
func (s *Stack) Restart(ctx context.Context, name string) error {
	p, ok := s.procs[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownProcess, name)
	}
	if err := p.stop(s.opts.Grace); err != nil {
		return err
	}
	s.logf("restarting %s", name)
	if err := p.start(); err != nil {
		return err
	}
	return p.waitReady(ctx)
}

// WaitQuiet waits until the dispatcher has nothing in flight and nothing
// left to pull (dispatch.Dispatcher.WaitQuiet).
func (s *Stack) WaitQuiet(ctx context.Context) error { return s.Dispatcher.WaitQuiet(ctx) }

// Warnings are the loud messages printed at start (e.g. no BigQuery
// emulator).
func (s *Stack) Warnings() []string { return append([]string(nil), s.warnings...) }

// Env returns the environment variables a client of the stack needs
// (PUBSUB_EMULATOR_HOST, DATABASE_URL, GOOGLE_CLOUD_PROJECT, ...) and one
// <NAME>_URL per process, sorted.
func (s *Stack) Env() []string {
	out := []string{
		"PUBSUB_EMULATOR_HOST=" + s.PubSubAddr,
		"PUBSUB_PROJECT_ID=" + s.Project,
		"GOOGLE_CLOUD_PROJECT=" + s.Project,
		"DATABASE_URL=" + s.DatabaseURL,
	}
	if s.BigQueryHost != "" {
		out = append(out, "BIGQUERY_EMULATOR_HOST="+s.BigQueryHost)
	}
	for _, name := range s.order {
		out = append(out, strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))+"_URL="+s.URL(name))
	}
	sort.Strings(out[4:])
	return out
}

// Stop stops the dispatcher (nacking what it holds), every process, the
// Pub/Sub server, the throwaway PostgreSQL cluster and removes the work
// directory. It is idempotent and returns the first error.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		if s.cancel != nil {
			s.cancel()
			<-s.runDone
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, p := range s.procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.stop(s.opts.Grace); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if s.Client != nil {
			s.Client.Close()
		}
		if s.conn != nil {
			s.conn.Close()
		}
		for _, p := range s.proxies {
			p.Stop()
		}
		if s.Server != nil {
			s.Server.Close()
		}
		if s.ownsPG {
			if err := pgtest.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop postgres: %w", err))
			}
		}
		if s.ownsWork && s.WorkDir != "" {
			if err := os.RemoveAll(s.WorkDir); err != nil {
				errs = append(errs, err)
			}
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

func (s *Stack) logf(format string, args ...any) {
	s.logger.Info(fmt.Sprintf(format, args...))
}

func (s *Stack) warn(msg string) {
	s.warnings = append(s.warnings, msg)
	s.logMu.Lock()
	fmt.Fprintf(s.log, "%-12s | WARNING: %s\n", "stack", msg)
	s.logMu.Unlock()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
