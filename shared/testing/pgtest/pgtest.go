// Package pgtest gives tests a real PostgreSQL database.
//
// When DATABASE_URL is set, every test gets a fresh database created on that
// server and dropped afterwards. Otherwise the first call starts a throwaway
// cluster with the initdb and pg_ctl found on PATH (or in the usual Debian
// location), listening only on a unix socket in a temporary directory; it is
// shared by every test of the test binary and stopped by Stop, which a test
// package calls from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// fsync stays on so that benchmarks measure what a real server does.
//
// initdb refuses to run as root. When the test runs as root, the cluster is
// initialised and started as the unprivileged user named by PGTEST_USER
// (default "postgres", then "nobody") through setpriv or su, and its
// directory is made readable to that user.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// InstallHint names what to install when no PostgreSQL server binaries exist.
const InstallHint = "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@15) " +
	"or set DATABASE_URL to a server the tests may create databases on"

var (
	mu       sync.Mutex
	cluster  *Cluster
	started  bool
	startErr error
)

// Cluster is a running PostgreSQL server the tests create databases on.
type Cluster struct {
	// AdminURL connects to the maintenance database as a superuser.
	AdminURL string
	dir      string // temporary cluster directory; empty for DATABASE_URL
	pgCtl    string
	runAs    []string // command prefix to drop root, if any
}

// Main runs the tests of a package and stops the throwaway cluster, if one
// was started, once they are done. Use it from TestMain.
func Main(m interface{ Run() int }) int {
	code := m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Start returns the shared cluster, starting it on first use.
func Start() (*Cluster, error) {
	mu.Lock()
	defer mu.Unlock()
	if started {
		return cluster, startErr
	}
	started = true
	cluster, startErr = start()
	return cluster, startErr
}

// Stop stops the throwaway cluster and removes its files. It is safe to call
// when no cluster was started.
func Stop() error {
	mu.Lock()
	defer mu.Unlock()
	c := cluster
	cluster, started, startErr = nil, false, nil
	if c == nil || c.dir == "" {
		return nil
	}
	return c.stop()
}

// NewDatabase creates an empty database for tb, dropped when tb ends, and
// returns its connection string.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	c, err := Start()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	name := "t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, c.AdminURL)
	if err != nil {
		tb.Fatalf("pgtest: connect admin: %v", err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	dsn, err := withDatabase(c.AdminURL, name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, c.AdminURL)
		if err != nil {
			tb.Errorf("pgtest: connect admin for cleanup: %v", err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return dsn
}

// NewPool creates a fresh database for tb and returns a pool connected to it,
// closed when tb ends.
func NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return Open(tb, NewDatabase(tb))
}

// Open returns a pool connected to dsn (a database of NewDatabase), closed
// when tb ends.
func Open(tb testing.TB, dsn string) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("pgtest: parse config: %v", err)
	}
	if cfg.MaxConns < 32 {
		cfg.MaxConns = 32
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("pgtest: open pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// LogPath returns the server log file of the throwaway cluster, for tests
// that check what the server logs, or "" when the server is DATABASE_URL's
// (its log is not ours to read).
func (c *Cluster) LogPath() string {
	if c.dir == "" {
		return ""
	}
	return filepath.Join(c.dir, "postgres.log")
}

func start() (*Cluster, error) {
	if dsn := os.Getenv("DATABASE_URL"); dsn != "" {
		return &Cluster{AdminURL: dsn}, nil
	}
	initdb, err := findBinary("initdb")
	if err != nil {
		return nil, err
	}
	pgCtl, err := findBinary("pg_ctl")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, pgCtl: pgCtl}
	osUser := ""
	if os.Geteuid() == 0 {
		u, err := unprivilegedUser()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("chown cluster dir to %s: %w", u.Username, err)
		}
		c.runAs = []string{"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups", "--"}
		if _, err := exec.LookPath("setpriv"); err != nil {
			c.runAs = []string{"su", "-s", "/bin/sh", u.Username, "-c", `exec "$0" "$@"`}
		}
		osUser = u.Username
	}
	data := filepath.Join(dir, "data")
	sock := dir
	pgUser := "postgres"
	out, err := c.run(initdb, "-D", data, "-U", pgUser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb (as %q): %w\n%s", osUser, err, out)
	}
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories='%s' -c max_connections=200 -c shared_buffers=128MB", sock)
	out, err = c.run(pgCtl, "-D", data, "-l", filepath.Join(dir, "postgres.log"), "-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		logData, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, logData)
	}
	c.AdminURL = (&url.URL{
		Scheme:   "postgres",
		User:     url.User(pgUser),
		Path:     "/postgres",
		RawQuery: url.Values{"host": {sock}, "sslmode": {"disable"}}.Encode(),
	}).String()
	return c, nil
}

// Restart restarts the throwaway cluster (pg_ctl restart -m fast): every
// connection is closed, as when a managed database fails over or is
// upgraded, and the server accepts connections again when it returns. It
// fails for DATABASE_URL's server (not ours to restart).
func (c *Cluster) Restart() error {
	if c.dir == "" {
		return errors.New("pgtest: restart: the server is DATABASE_URL's, not a throwaway cluster")
	}
	data := filepath.Join(c.dir, "data")
	out, err := c.run(c.pgCtl, "-D", data, "-l", filepath.Join(c.dir, "postgres.log"), "-m", "fast", "-w", "-t", "60", "restart")
	if err != nil {
		return fmt.Errorf("pg_ctl restart: %w\n%s", err, out)
	}
	return nil
}

func (c *Cluster) stop() error {
	data := filepath.Join(c.dir, "data")
	out, err := c.run(c.pgCtl, "-D", data, "-m", "fast", "-w", "stop")
	rmErr := os.RemoveAll(c.dir)
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return rmErr
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, c.runAs...), name), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// findBinary looks for a PostgreSQL server program on PATH, then in the
// versioned directories Debian and Homebrew install to.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var candidates []string
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin/", "/usr/local/opt/postgresql*/bin/", "/opt/homebrew/opt/postgresql*/bin/"} {
		m, _ := filepath.Glob(pattern + name)
		candidates = append(candidates, m...)
	}
	if len(candidates) > 0 {
		return candidates[len(candidates)-1], nil
	}
	return "", fmt.Errorf("PostgreSQL server program %q not found on PATH: %s", name, InstallHint)
}

func unprivilegedUser() (*user.User, error) {
	names := []string{"postgres", "nobody"}
	if n := os.Getenv("PGTEST_USER"); n != "" {
		names = []string{n}
	}
	for _, n := range names {
		if u, err := user.Lookup(n); err == nil {
			return u, nil
		}
	}
	return nil, errors.New("running as root and no unprivileged user (" + strings.Join(names, ", ") + ") exists for initdb: create one or set PGTEST_USER")
}

func withDatabase(dsn, db string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		// key=value form
		return dsn + " dbname=" + db, nil
	}
	u.Path = "/" + db
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
