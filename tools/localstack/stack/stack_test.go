package stack_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/testing/logbuf"
	"example.com/platform/tools/localstack/dispatch"
	"example.com/platform/tools/localstack/stack"
)

func readLines(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]string
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

func bodies(rows []map[string]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["body"])
	}
	return out
}

func publish(t *testing.T, s *stack.Stack, topic, body, key string) {
	t.Helper()
	_, err := s.Client.TopicAdminClient.Publish(context.Background(), &pubsubpb.PublishRequest{
		Topic:    dispatch.TopicName(s.Project, topic),
		Messages: []*pubsubpb.PubsubMessage{{Data: []byte(body), OrderingKey: key}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitQuiet(t *testing.T, s *stack.Stack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.WaitQuiet(ctx); err != nil {
		t.Fatal(err)
	}
}

// The fixture repository (testdata/repo) has a consumer that fails on
// "poison" and a dead-letter archive; both are built and run as processes.
func TestStackRunsFixtureEndToEnd(t *testing.T) {
	root, err := filepath.Abs("testdata/repo")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "echo.jsonl")
	logs := &logbuf.Buffer{}
	echoFailed := make(chan struct{}, 100)
	t.Setenv("DATABASE_URL", "")
	s, err := stack.Start(context.Background(), stack.Options{
		Root:               root,
		BackoffScale:       0.001,
		Env:                map[string]map[string]string{"echo": {"ECHO_OUT": out}},
		Log:                logs,
		NoBigQueryEmulator: true,
		Observer: func(ev dispatch.Event) {
			if ev.Consumer == "echo" && ev.Outcome == dispatch.OutcomeRetry && ev.Status == 0 {
				select {
				case echoFailed <- struct{}{}:
				default:
				}
			}
		},
	})
	if err != nil {
		t.Fatalf("Start: %v\nlogs:\n%s", err, logs)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			s.Stop()
		}
	})

	if got := s.Names(); strings.Join(got, ",") != "archive,echo" {
		t.Errorf("processes = %v", got)
	}
	env := strings.Join(s.Env(), "\n")
	for _, want := range []string{"PUBSUB_EMULATOR_HOST=" + s.PubSubAddr, "DATABASE_URL=" + s.DatabaseURL, "ECHO_URL=" + s.URL("echo")} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() lacks %q:\n%s", want, env)
		}
	}
	if !strings.HasPrefix(s.PubSubAddr, "127.0.0.1:") {
		t.Errorf("PubSubAddr = %q", s.PubSubAddr)
	}
	conn, err := pgx.Connect(context.Background(), s.DatabaseURL)
	if err != nil {
		t.Fatalf("database: %v", err)
	}
	var db string
	if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&db); err != nil || db != stack.DefaultDatabase {
		t.Errorf("database = %q, %v", db, err)
	}
	conn.Close(context.Background())
	if w := s.Warnings(); len(w) == 0 || !strings.Contains(strings.Join(w, " "), "BigQuery") {
		t.Errorf("warnings = %v", w)
	}
	sink := s.SinkFiles["archive"]
	if sink == "" {
		t.Fatalf("no sink file for archive: %v", s.SinkFiles)
	}

	publish(t, s, "thing.created", "a", "k1")
	publish(t, s, "thing.created", "poison", "k2")
	publish(t, s, "thing.created", "b", "k1")
	waitQuiet(t, s)

	if got := bodies(readLines(t, out)); strings.Join(got, ",") != "a,b" {
		t.Errorf("echo received %v", got)
	}
	for _, r := range readLines(t, out) {
		if r["mode"] != "record" || r["function"] != "echo" {
			t.Errorf("echo env from manifest and stack missing: %v", r)
		}
	}
	dead := readLines(t, sink)
	if len(dead) != 1 || dead[0]["body"] != "poison" ||
		header(dead[0], deadletter.AttrPubSubDeliveryCount) != "5" || header(dead[0], deadletter.AttrPubSubSubscription) != "echo--thing.created" ||
		header(dead[0], deadletter.AttrPubSubSubscriptionProject) != s.Project {
		t.Fatalf("archive received %v\nstats %+v\nlogs:\n%s", dead, s.Dispatcher.Stats(), logs)
	}

	// Kill the consumer mid-run: pushes fail and are retried; after the
	// restart nothing is lost.
	if err := s.Kill("echo"); err != nil {
		t.Fatal(err)
	}
	if s.Running("echo") {
		t.Fatal("echo still running after Kill")
	}
	publish(t, s, "thing.created", "c", "k1")
	<-echoFailed // a push to the dead process failed (connection refused)
	if s.Dispatcher.Quiet() {
		t.Fatal("quiet while a message for echo waits")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Restart(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	waitQuiet(t, s)
	if got := bodies(readLines(t, out)); strings.Join(got, ",") != "a,b,c" {
		t.Errorf("after restart echo received %v", got)
	}
	if err := s.Kill("nope"); !errors.Is(err, stack.ErrUnknownProcess) {
		t.Errorf("Kill(nope) = %v", err)
	}

	if !strings.Contains(logs.String(), "dispatcher   | ") {
		t.Errorf("no prefixed dispatcher lines in logs:\n%s", logs)
	}

	work, dsn := s.WorkDir, s.DatabaseURL
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if s.Running("echo") || s.Running("archive") {
		t.Error("processes still running after Stop")
	}
	if _, err := os.Stat(work); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work dir %s still there: %v", work, err)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	if c, err := pgx.Connect(cctx, dsn); err == nil {
		c.Close(context.Background())
		t.Error("throwaway PostgreSQL still reachable after Stop")
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// header looks a pushed attribute up case-insensitively (HTTP
// canonicalises header names).
func header(row map[string]string, name string) string {
	for k, v := range row {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func TestStartRejectsUnknownFunction(t *testing.T) {
	root, err := filepath.Abs("testdata/repo")
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	_, err = stack.Start(context.Background(), stack.Options{
		Root: root, Functions: []string{"nope"}, DatabaseURL: "postgres://unused", Log: &logbuf.Buffer{}, WorkDir: work, NoBigQueryEmulator: true,
	})
	if !errors.Is(err, stack.ErrUnknownProcess) {
		t.Fatalf("Start = %v", err)
	}
}

func TestFindRoot(t *testing.T) {
	root, err := filepath.Abs("testdata/repo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := stack.FindRoot(filepath.Join(root, "functions", "echo", "cmd"))
	if err != nil || got != root {
		t.Errorf("FindRoot = %q, %v", got, err)
	}
	if _, err := stack.FindRoot("/"); !errors.Is(err, stack.ErrNoRoot) {
		t.Errorf("FindRoot(/) = %v", err)
	}
}
