// Package bench is the benchmark suite of `make bench` (tools/cmd/bench):
// in one process, on one PostgreSQL server and one Pub/Sub server (pstest),
// it runs the idempotency and outbox relay micro-benchmarks
// (shared/idempotency/idempotencybench, shared/outbox/outboxbench), then
// the local stack (tools/localstack/stack) under a steady load of orders
// for end-to-end latency, the highest sustained rate, CPU per event of
// every function and the cold start of every function against a bare
// functions-framework function. It prints a table and one last line
//
//	bench: relay_vs_ceiling=0.46 tx_vs_raw_c1=... ...
//
// Every measure verifies what it measures: the relay and the client alone
// delivered every event exactly once and in order per key, first
// deliveries were processed and duplicates recognised with no second
// effect, every order of a latency phase was accepted and shipped. A
// failed verification fails the run; a missed target does not (the table
// says so). docs/benchmarks.md explains each measure.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/manifest"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/tools/localstack/stack"
)

// Config configures Run. Zero values are the full run's defaults; Quick
// replaces them with CI's short ones.
type Config struct {
	// Quick is BENCH_QUICK=1: one short repetition of everything; the
	// numbers mean nothing, the verifications still run.
	Quick bool
	// Reps is the repetitions of each micro-benchmark (median taken);
	// default 3 (Quick: 1).
	Reps int
	// Micro is the duration of each idempotency measure; default 2s
	// (Quick: 200ms).
	Micro time.Duration
	// Phase is the duration of each steady-rate phase; default 60s
	// (Quick: 5s).
	Phase time.Duration
	// E2ERate is the rate of the latency phase; default 50/s.
	E2ERate float64
	// ColdStarts is the cold starts per function (median taken); default
	// 5 (Quick: 1).
	ColdStarts int
	// PerfDir, when set, records a perf CPU profile of every function
	// during the end-to-end phase into this directory (needs perf).
	PerfDir string
	// AllCores runs every function with this machine's GOMAXPROCS instead
	// of its manifest's resources.cpu, as `make dev` does.
	AllCores bool
	// Root is the repository root; default found from the working
	// directory.
	Root string
	// Out receives the table and the bench: line; Log the progress; Stack
	// the stack's process logs (default discarded).
	Out, Log, Stack io.Writer
}

func (c *Config) defaults() error {
	if c.Reps <= 0 {
		c.Reps = 3
		if c.Quick {
			c.Reps = 1
		}
	}
	if c.Micro <= 0 {
		c.Micro = 2 * time.Second
		if c.Quick {
			c.Micro = 200 * time.Millisecond
		}
	}
	if c.Phase <= 0 {
		c.Phase = 60 * time.Second
		if c.Quick {
			c.Phase = 5 * time.Second
		}
	}
	if c.E2ERate <= 0 {
		c.E2ERate = 50
	}
	if c.ColdStarts <= 0 {
		c.ColdStarts = 5
		if c.Quick {
			c.ColdStarts = 1
		}
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Stack == nil {
		c.Stack = io.Discard
	}
	if c.Root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if c.Root, err = stack.FindRoot(wd); err != nil {
			return err
		}
	}
	return nil
}

// ErrVerify wraps every failed verification.
var ErrVerify = errors.New("bench: verification failed")

// runner holds what the phases share.
type runner struct {
	cfg     Config
	admin   string // superuser URL of the cluster
	dataDir string // the cluster's data directory, for its CPU time
	st      *stack.Stack
	db      *pgxpool.Pool
	res     *Results
	runID   string
	loader  *loader
}

// relayEvery is how often the stack calls the relay service's schedule:
// not more often, since a drain also claims rows whose publish after
// commit is merely late, and takes CPU from the stack.
const relayEvery = 10 * time.Second

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "bench: "+format+"\n", args...)
}

// Run runs the whole suite and prints the table and the bench: line to
// cfg.Out. It returns an error wrapping ErrVerify when a verification
// fails, after printing what was measured.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	r := &runner{cfg: cfg, res: &Results{Quick: cfg.Quick, Started: time.Now()}, runID: hex.EncodeToString(rb[:])}
	r.res.LoadBefore = loadAvg()
	err := r.run(ctx)
	r.res.Elapsed = time.Since(r.res.Started)
	r.res.LoadAfter = loadAvg()
	r.res.Err = err
	r.res.Write(cfg.Out)
	return r.res, err
}

func (r *runner) run(ctx context.Context) (err error) {
	cluster, err := pgtest.Start()
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer func() {
		if serr := pgtest.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	r.admin = cluster.AdminURL
	if u, err := url.Parse(cluster.AdminURL); err == nil && u.Query().Get("host") != "" {
		r.dataDir = filepath.Join(u.Query().Get("host"), "data")
	}
	dbs := map[string]string{}
	for _, name := range []string{"platform", "bench_idempotency", "bench_outbox"} {
		if dbs[name], err = r.createDatabase(ctx, name); err != nil {
			return err
		}
	}

	r.logf("starting the local stack (the first run builds every function)")
	start := time.Now()
	env, err := r.productionEnv()
	if err != nil {
		return err
	}
	r.st, err = stack.Start(ctx, stack.Options{
		Env:                env,
		Root:               r.cfg.Root,
		DatabaseURL:        dbs["platform"],
		Log:                r.cfg.Stack,
		NoBigQueryEmulator: true,
		SkipMissing:        true,
		// The outbox relay service (functions/relay) runs its schedule as
		// Cloud Scheduler does, more often than its minute: an order whose
		// publish after commit gave up (under overload) still ships.
		ScheduleEvery: relayEvery,
	})
	if err != nil {
		return fmt.Errorf("start the local stack: %w", err)
	}
	defer func() {
		if serr := r.st.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	r.logf("stack up in %s", time.Since(start).Round(100*time.Millisecond))
	if r.db, err = pgxpool.New(ctx, dbs["platform"]); err != nil {
		return err
	}
	defer r.db.Close()
	if err := r.idempotency(ctx, dbs["bench_idempotency"]); err != nil {
		return err
	}
	if err := r.relay(ctx, dbs["bench_outbox"]); err != nil {
		return err
	}
	if err := r.endToEnd(ctx); err != nil {
		return err
	}
	if err := r.maxRate(ctx); err != nil {
		return err
	}
	return r.coldStarts(ctx)
}

func (r *runner) createDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, r.admin)
	if err != nil {
		return "", fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.Background())
	db := name + "_" + r.runID
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return "", fmt.Errorf("postgres: create database %s: %w", db, err)
	}
	u, err := url.Parse(r.admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + db
	return u.String(), nil
}

// productionEnv gives every function the GOMAXPROCS it gets on Cloud Run:
// Go sets GOMAXPROCS from the container's CPU limit, which is the
// manifest's resources.cpu (rounded up), while the local stack runs every
// function on all of this machine's cores. More Ps than the CPU the
// function is given only spin and wake threads for nothing
// (docs/benchmarks.md, "CPU per event").
func (r *runner) productionEnv() (map[string]map[string]string, error) {
	if r.cfg.AllCores {
		return nil, nil
	}
	repo, err := manifest.LoadRepo(r.cfg.Root)
	if err != nil {
		return nil, err
	}
	env := map[string]map[string]string{}
	for _, m := range repo.Functions {
		cpu, err := strconv.ParseFloat(m.Resources.CPU, 64)
		if err != nil || cpu <= 0 {
			continue
		}
		env[m.Name] = map[string]string{"GOMAXPROCS": strconv.Itoa(int(math.Ceil(cpu)))}
	}
	return env, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	var a, b5, c float64
	fmt.Sscanf(string(b), "%f %f %f", &a, &b5, &c)
	return fmt.Sprintf("%.2f %.2f %.2f", a, b5, c)
}
