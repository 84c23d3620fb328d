package stack

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// This file holds the stack's hooks for fault injection (the chaos run,
// tools/localstack/chaos): SIGKILL, a PostgreSQL restart, per-database
// settings, and the Pub/Sub fault proxy.

// SigKill kills one process at once with SIGKILL (no SIGTERM, no grace: no
// shutdown hook runs, in-flight requests die with it), as when an instance
// is OOM-killed. Its pushes fail until Restart.
func (s *Stack) SigKill(name string) error {
	p, ok := s.procs[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownProcess, name)
	}
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	s.logf("SIGKILL %s", name)
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("sigkill %s: %w", name, err)
	}
	<-done
	return nil
}

// RestartDatabase restarts the stack's own PostgreSQL cluster (pg_ctl
// restart -m fast): every connection of every function is closed and the
// server is back when it returns. It fails when the stack uses
// DATABASE_URL's server.
func (s *Stack) RestartDatabase() error {
	if s.pg == nil {
		return fmt.Errorf("stack: restart database: the database is not the stack's own cluster")
	}
	s.logf("restarting PostgreSQL")
	return s.pg.Restart()
}

// applyDatabaseSettings runs ALTER DATABASE ... SET for Options.DatabaseSettings.
func (s *Stack) applyDatabaseSettings(ctx context.Context) error {
	if len(s.opts.DatabaseSettings) == 0 {
		return nil
	}
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.Background())
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return fmt.Errorf("postgres: current database: %w", err)
	}
	names := make([]string, 0, len(s.opts.DatabaseSettings))
	for k := range s.opts.DatabaseSettings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := strings.ReplaceAll(s.opts.DatabaseSettings[k], "'", "''")
		q := fmt.Sprintf("ALTER DATABASE %s SET %s = '%s'", pgx.Identifier{db}.Sanitize(), pgx.Identifier{k}.Sanitize(), v)
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("postgres: %s: %w", q, err)
		}
	}
	return nil
}

// functionPubSubAddr is the Pub/Sub address a function gets: its fault
// proxy's when Options.PubSubFault is set (started here, once per
// function), else the server's.
func (s *Stack) functionPubSubAddr(name string) string {
	if s.opts.PubSubFault == nil {
		return s.PubSubAddr
	}
	if a, ok := s.proxyAdr[name]; ok {
		return a
	}
	a, err := s.startFaultProxy(name)
	if err != nil {
		s.warn(fmt.Sprintf("pubsub fault proxy for %s: %v; it talks to the server directly", name, err))
		return s.PubSubAddr
	}
	return a
}

// rawCodec passes gRPC messages through as bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// startFaultProxy starts the Pub/Sub fault proxy of one function: a gRPC
// server that forwards every unary call, as bytes, to the pstest server
// after asking Options.PubSubFault. Streaming calls (StreamingPull) are
// not forwarded: the functions only publish.
func (s *Stack) startFaultProxy(name string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	up, err := grpc.NewClient(s.PubSubAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		l.Close()
		return "", fmt.Errorf("dial: %w", err)
	}
	fault := s.opts.PubSubFault
	handler := func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		var in []byte
		if err := stream.RecvMsg(&in); err != nil {
			return err
		}
		ctx := stream.Context()
		if err := fault(ctx, name, method); err != nil {
			return err
		}
		var out []byte
		if err := up.Invoke(ctx, method, &in, &out, grpc.ForceCodec(rawCodec{})); err != nil {
			return err
		}
		return stream.SendMsg(&out)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(handler))
	if s.proxies == nil {
		s.proxies, s.proxyAdr = map[string]*grpc.Server{}, map[string]string{}
	}
	s.proxies[name] = srv
	s.proxyAdr[name] = l.Addr().String()
	go func() {
		_ = srv.Serve(l)
		up.Close()
	}()
	return s.proxyAdr[name], nil
}

// ProcessEnv returns the value of an environment variable of a process as
// the stack started it ("" when unset or the process is unknown), e.g. a
// function's DATABASE_URL.
func (s *Stack) ProcessEnv(name, key string) string {
	p, ok := s.procs[name]
	if !ok {
		return ""
	}
	v := ""
	for _, kv := range p.env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val // the last one wins, as in exec
		}
	}
	return v
}

// DatabaseLogPath is the server log of the stack's own PostgreSQL cluster,
// or "" when the database is DATABASE_URL's.
func (s *Stack) DatabaseLogPath() string {
	if s.pg == nil {
		return ""
	}
	return s.pg.LogPath()
}
