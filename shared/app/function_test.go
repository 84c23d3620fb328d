package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/app"
	"example.com/platform/shared/events"
	"example.com/platform/shared/events/eventstest"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/parking"
	"example.com/platform/shared/postgres"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
	"example.com/platform/shared/testing/pushtest"
)

// manifestYAML is the function.yaml of a test consumer of thing.created.
func manifestYAML(mode, database string) []byte {
	return fmt.Appendf(nil, `
name: things
owner: {team: t, codeowners: ["@org/t"]}
kind: cloudevent
entry_point: Things
idempotency: %s
database: %s
consumes: [{topic: thing.created, ack_deadline: 30s}]
resources: {timeout: 30s, handler_timeout: 20s}
`, mode, database)
}

// things is a service of the test consumer: it counts what it saw in its
// own table, inside the delivery's transaction.
type things struct{ table string }

func newThings(context.Context, *app.Deps) (*things, error) {
	return &things{table: "things_seen"}, nil
}

func (s *things) handle(ctx context.Context, tx pgx.Tx, ev handler.Event[eventstest.Created]) ([]handler.Out, error) {
	if _, err := tx.Exec(ctx, "INSERT INTO things_seen (id) VALUES ($1)", ev.Data.ThingID); err != nil {
		return nil, err
	}
	out, err := handler.Emit(ctx, "//things", eventstest.Done{ThingID: ev.Data.ThingID, At: ev.Data.At})
	return []handler.Out{out}, err
}

func (s *things) lease(context.Context, *handler.Claim, handler.Event[eventstest.Created]) ([]byte, error) {
	return nil, nil
}

var thingsMigrations = fstest.MapFS{"0001_things.sql": {Data: []byte("-- +goose Up\nCREATE TABLE things_seen (id text PRIMARY KEY);\n-- +goose Down\nDROP TABLE things_seen;\n")}}

func TestNewChecksTheFunctionAgainstItsManifest(t *testing.T) {
	tx := app.Transactional(newThings, (*things).handle)
	for _, tt := range []struct {
		name string
		f    app.Function
		want string
	}{
		{"mode differs", app.Function{Manifest: manifestYAML("lease", "true"), Consumer: tx},
			"function.yaml says idempotency: lease but the consumer's function is of transactional mode"},
		{"no database", app.Function{Manifest: manifestYAML("transactional", "false"), Consumer: tx},
			"set database: true"},
		{"no consumer", app.Function{Manifest: manifestYAML("transactional", "true")}, "kind cloudevent needs a Consumer"},
		{"serve on an event function", app.Function{Manifest: manifestYAML("transactional", "true"), Consumer: tx,
			Serve: func(context.Context, *app.Deps) (http.Handler, error) { return nil, nil }}, "and no Serve"},
		{"http without serve", app.Function{Manifest: []byte("name: api\nkind: http\nentry_point: API\n")}, "kind http needs Serve"},
		{"timeout in code", app.Function{Manifest: manifestYAML("transactional", "true"), Consumer: tx, Handler: handler.Config{Timeout: time.Second}},
			"resources.handler_timeout in function.yaml"},
		{"not yaml", app.Function{Manifest: []byte("name: [")}, "function.yaml"},
		{"unknown key", app.Function{Manifest: []byte("name: x\nkindd: http\n")}, "function.yaml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := app.New(tt.f)
			if !errors.Is(err, app.ErrRegistration) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want ErrRegistration with %q", err, tt.want)
			}
			defer func() {
				if v := recover(); v == nil || !strings.Contains(v.(error).Error(), tt.want) {
					t.Fatalf("Register did not panic with the error: %v", v)
				}
			}()
			app.Register(tt.f)
		})
	}
	if _, err := app.New(app.Function{Manifest: manifestYAML("lease", "true"), Consumer: app.Lease(newThings, (*things).lease)}); err != nil {
		t.Fatalf("a matching lease function: %v", err)
	}
}

// TestBuildWiresEverything builds a transactional function from its
// environment alone: it migrates the function's table, and a delivery
// commits the function's write and its message, which is published after
// the commit.
func TestBuildWiresEverything(t *testing.T) {
	fake := pubsubtest.New(t)
	fake.CreateTopic(t, "things.dlq")
	fake.CreateTopic(t, eventstest.TopicDone)
	t.Setenv("PUBSUB_EMULATOR_HOST", fake.Server.Addr)
	dbURL := pgtest.NewDatabase(t)
	r, err := app.New(app.Function{
		Manifest:   manifestYAML("transactional", "true"),
		Migrations: []app.Migration{{Name: "things", FS: thingsMigrations}},
		Consumer:   app.Transactional(newThings, (*things).handle),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.EntryPoint() != "Things" || !r.Needs().Database || !r.Needs().PubSub {
		t.Fatalf("entry point %q, needs %+v", r.EntryPoint(), r.Needs())
	}
	vars := map[string]string{"FUNCTION_NAME": "things", "GOOGLE_CLOUD_PROJECT": pubsubtest.Project, "DATABASE_URL": dbURL, "DB_MIGRATE": "true"}
	h, err := r.Build(context.Background(), func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	p := eventstest.NewCreated()
	_, m, err := events.NewMessage(context.Background(), "//tests", p)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the duplicate is acknowledged and changes nothing
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, pushtest.Binary(t, "http://fn/", m, events.Delivery{MessageID: "1"}))
		if rec.Code != http.StatusNoContent {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	db := pgtest.Open(t, dbURL)
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM things_seen WHERE id = $1", p.ThingID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows %d, err %v", n, err)
	}
	var pending int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM outbox WHERE published_at IS NULL").Scan(&pending); err != nil || pending != 0 {
		t.Fatalf("pending outbox rows %d (err %v): the message was not published after commit", pending, err)
	}
	var done []messaging.Message
	for _, pm := range fake.Server.Messages() {
		if strings.HasSuffix(pm.Topic, "/"+eventstest.TopicDone) {
			done = append(done, messaging.Message{Data: pm.Data, Attributes: pm.Attributes})
		}
	}
	if len(done) != 1 || done[0].Attributes[events.AttrType] != eventstest.TypeDone {
		t.Fatalf("published on %s: %+v", eventstest.TopicDone, done)
	}
}

func TestBuildReportsEverythingMissing(t *testing.T) {
	r, err := app.New(app.Function{
		Manifest: manifestYAML("transactional", "true"),
		Vars:     []app.Var{{Name: "THINGS_COLOUR", Required: true}},
		Consumer: app.Transactional(newThings, (*things).handle),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Build(context.Background(), func(string) string { return "" })
	if !errors.Is(err, app.ErrConfig) {
		t.Fatalf("err %v, want ErrConfig", err)
	}
	for _, name := range []string{"FUNCTION_NAME", "GOOGLE_CLOUD_PROJECT", "DATABASE_URL", "THINGS_COLOUR"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

// TestBuildChecksTheSchemaWithoutDBMigrate: without DB_MIGRATE (production:
// the migration job owns the schema) Build migrates nothing. An unmigrated
// kernel or function schema is a transient start failure naming the fix,
// answered 503 (Pub/Sub redelivers) and logged with error_class schema so
// it alerts; once migrated, Build succeeds.
func TestBuildChecksTheSchemaWithoutDBMigrate(t *testing.T) {
	fake := pubsubtest.New(t)
	fake.CreateTopic(t, "things.dlq")
	t.Setenv("PUBSUB_EMULATOR_HOST", fake.Server.Addr)
	dbURL := pgtest.NewDatabase(t)
	r, err := app.New(app.Function{
		Manifest:   manifestYAML("transactional", "true"),
		Migrations: []app.Migration{{Name: "things", FS: thingsMigrations}},
		Consumer:   app.Transactional(newThings, (*things).handle),
	})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"FUNCTION_NAME": "things", "GOOGLE_CLOUD_PROJECT": pubsubtest.Project, "DATABASE_URL": dbURL}
	getenv := func(k string) string { return vars[k] }
	ctx := context.Background()
	_, err = r.Build(ctx, getenv)
	if !errors.Is(err, postgres.ErrNotMigrated) || errors.Is(err, app.ErrConfig) || !strings.Contains(err.Error(), "run migrate up") || !strings.Contains(err.Error(), "idempotency") {
		t.Fatalf("empty database: got %v, want a transient ErrNotMigrated naming the idempotency schema", err)
	}
	pool := pgtest.Open(t, dbURL)
	var tables int
	pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables)
	if tables != 0 {
		t.Fatalf("Build without DB_MIGRATE created %d tables", tables)
	}
	// The kernel migrated, the function's schema not yet.
	if err := idempotency.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := outbox.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, pool, parking.Component, parking.Migrations()); err != nil {
		t.Fatal(err)
	}
	_, err = r.Build(ctx, getenv)
	if !errors.Is(err, postgres.ErrNotMigrated) || !strings.Contains(err.Error(), "things lacks versions [1]") {
		t.Fatalf("function schema missing: got %v", err)
	}
	var logs bytes.Buffer
	lazy := app.NewLazy(func(ctx context.Context) (http.Handler, error) { return r.Build(ctx, getenv) }, slog.New(slog.NewJSONHandler(&logs, nil)))
	rec := httptest.NewRecorder()
	lazy.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "schema not migrated: run migrate up") {
		t.Fatalf("unmigrated start answered %d %q, want 503 naming the fix", rec.Code, rec.Body.String())
	}
	if !strings.Contains(logs.String(), `"error_class":"schema"`) {
		t.Fatalf("start failure not classed for alerting: %s", logs.String())
	}
	if err := r.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	h, err := r.Build(ctx, getenv)
	if err != nil || h == nil {
		t.Fatalf("migrated database: %v", err)
	}
}
