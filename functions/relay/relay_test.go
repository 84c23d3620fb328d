package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/app"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/parking"
	"example.com/platform/shared/testing/fftest"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// env is a database with the kernel's schema and a pstest server with the
// topics, configured for the registered relay.
type env struct {
	pool *pgxpool.Pool
	ps   *pubsubtest.Fake
	vars map[string]string
}

func newEnv(t *testing.T, topics ...string) *env {
	t.Helper()
	ps := pubsubtest.New(t)
	for _, tp := range topics {
		ps.CreateTopic(t, tp)
	}
	t.Setenv("PUBSUB_EMULATOR_HOST", ps.Server.Addr)
	dbURL := pgtest.NewDatabase(t)
	pool := pgtest.Open(t, dbURL)
	if err := function.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return &env{pool: pool, ps: ps, vars: map[string]string{
		app.EnvFunction: "relay", app.EnvProject: pubsubtest.Project, app.EnvDatabaseURL: dbURL, app.EnvLogLevel: "error", app.EnvDBMigrate: "true",
	}}
}

func (e *env) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// TestRunPublishesWhatIsLeftAndPurgesWhatIsDone: one run publishes the
// pending rows in key order, deletes published rows and processed-event
// records past their retention, keeps the recent ones, and reports it.
func TestRunPublishesWhatIsLeftAndPurgesWhatIsDone(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "a.topic", "b.topic")
	var entries []outbox.Entry
	for i := range 6 {
		topic := []string{"a.topic", "b.topic"}[i%2]
		entries = append(entries, outbox.Entry{Topic: topic, Message: messaging.Message{Data: []byte{byte('0' + i)}, OrderingKey: "k"}})
	}
	if _, err := outbox.WriteMany(ctx, e.pool, entries); err != nil {
		t.Fatal(err)
	}
	// Two published rows, one old enough to purge.
	e.exec(t, `INSERT INTO outbox (topic, data, published_at) VALUES ('a.topic', 'x', now() - interval '200 hours'), ('a.topic', 'y', now() - interval '1 hour')`)
	store, err := idempotency.New(e.pool, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"old", "new"} {
		c, err := store.Claim(ctx, idempotency.KeyFor("shipment", "//s", id), nil, 1e9)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Complete(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	e.exec(t, `UPDATE processed_events SET completed_at = now() - interval '200 hours', created_at = now() - interval '200 hours' WHERE event_key LIKE '%old'`)

	h, err := function.Build(ctx, func(k string) string { return e.vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, RunPath, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var rep Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Published != 6 || rep.Failed != 0 || rep.PurgedOutbox != 1 || rep.PurgedIdempotency != 1 || rep.Stuck != 0 || !rep.Complete {
		t.Fatalf("report %+v", rep)
	}
	byTopic := map[string]string{}
	for _, m := range e.ps.Server.Messages() {
		byTopic[m.Topic[strings.LastIndex(m.Topic, "/")+1:]] += string(m.Data)
	}
	if byTopic["a.topic"] != "024" || byTopic["b.topic"] != "135" {
		t.Fatalf("published %v, want every pending row once, in order per topic and key", byTopic)
	}
	var left, records int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&left); err != nil || left != 7 {
		t.Fatalf("outbox rows left %d (err %v), want the 6 just published and the recent one", left, err)
	}
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM processed_events`).Scan(&records); err != nil || records != 1 {
		t.Fatalf("processed events left %d (err %v), want the recent one", records, err)
	}
}

// TestServedAsRegistered: the Functions Framework serves the relay under
// its entry point, with liveness that needs no configuration and only
// POST /run.
func TestServedAsRegistered(t *testing.T) {
	e := newEnv(t)
	for k, v := range e.vars {
		t.Setenv(k, v)
	}
	function.Reset()
	url := fftest.Start(t, EntryPoint)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodGet, RunPath, http.StatusMethodNotAllowed},
		{http.MethodPost, "/elsewhere", http.StatusNotFound},
		{http.MethodPost, RunPath, http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

// TestRunReportsParkedKeys: each run logs one WARNING per subscription
// with parked keys, with the fields the parked_keys and
// parked_key_age_seconds log metrics extract.
func TestRunReportsParkedKeys(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	store := parking.New(e.pool)
	for _, k := range []string{"order-1", "order-2"} {
		h := parking.Head{Key: parking.Key{Subscription: "payment--order.created", OrderingKey: k}, Consumer: "payment", Topic: "order.created",
			Head: parking.Event{EventKey: "s/" + k, EventID: k, EventType: "t", MessageID: "m"}, DeadLetterID: "d", Reason: "bad"}
		if err := store.Park(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	e.exec(t, `UPDATE parked_keys SET parked_at = now() - interval '90 seconds' WHERE ordering_key = 'order-1'`)
	relay, err := outbox.NewRelay(outbox.Config{Pool: e.pool, Publisher: &messaging.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	idem, err := idempotency.New(e.pool, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s := &Service{Relay: relay, Idempotency: idem, Parking: store, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Budget: time.Minute, OutboxRetention: time.Hour, IdempotencyRetention: time.Hour}
	rep, err := s.Run(ctx)
	if err != nil || rep.ParkedKeys != 2 {
		t.Fatalf("report %+v %v", rep, err)
	}
	var line struct {
		Level, Msg, Subscription, Consumer string
		Keys                               int   `json:"parked_keys"`
		Age                                int64 `json:"oldest_age_seconds"`
	}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, ParkedMessage) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line.Level != "WARN" || line.Subscription != "payment--order.created" || line.Consumer != "payment" || line.Keys != 2 || line.Age < 90 {
		t.Fatalf("parked-keys line %+v in %s", line, logs.String())
	}
}
