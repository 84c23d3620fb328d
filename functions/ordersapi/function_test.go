package ordersapi

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/app"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/testing/fftest"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
)

// TestThroughFramework serves the registered entry point with
// functions-framework-go, configured only by environment variables, as in
// production. The framework's server and the lazily built API live for the
// whole test binary, so this is the only test that uses them.
func TestThroughFramework(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ps := pubsubtest.New(t)
	ps.CreateTopic(t, orderTopic)
	t.Setenv("FUNCTION_NAME", "ordersapi")
	t.Setenv("GOOGLE_CLOUD_PROJECT", pubsubtest.Project)
	t.Setenv("DATABASE_URL", dsn)
	t.Setenv("DB_MIGRATE", "true")
	t.Setenv("PUBSUB_EMULATOR_HOST", ps.Server.Addr)
	t.Setenv("LOG_LEVEL", "warn")
	base := fftest.Start(t, EntryPoint)

	if r := do(t, "GET", base+"/healthz", "", nil); r.status != http.StatusOK {
		t.Fatalf("healthz %d %s", r.status, r.body)
	}
	if r := do(t, "GET", base+"/readyz", "", nil); r.status != http.StatusOK {
		t.Fatalf("readyz %d %s", r.status, r.body)
	}

	key := map[string]string{"Idempotency-Key": uuid.NewString()}
	created := do(t, "POST", base+"/v1/orders", validBody, key)
	if created.status != http.StatusCreated {
		t.Fatalf("create %d %s", created.status, created.body)
	}
	o := created.order(t)
	if created.header.Get("Location") != "/v1/orders/"+o.ID {
		t.Fatalf("Location %q", created.header.Get("Location"))
	}
	published := 0
	for _, m := range ps.Server.Messages() {
		if m.Topic == pubsubtest.TopicName(orderTopic) {
			published++
			if m.OrderingKey != o.ID || m.Attributes["ce-subject"] != o.ID {
				t.Fatalf("message %+v", m)
			}
		}
	}
	if published != 1 {
		t.Fatalf("%d order.created messages, want 1", published)
	}
	replay := do(t, "POST", base+"/v1/orders", validBody, key)
	if replay.status != http.StatusCreated || !bytes.Equal(replay.body, created.body) {
		t.Fatalf("replay %d %s", replay.status, replay.body)
	}
	if r := do(t, "POST", base+"/v1/orders", strings.Replace(validBody, "EUR", "USD", 1), key); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("reused key: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", base+"/v1/orders", `{"customer_id":"c","currency":"EUR","items":[{"sku":"A","quantity":0,"unit_price":1}]}`, nil); r.status != http.StatusBadRequest || !r.problem(t).hasField("items[0].quantity") {
		t.Fatalf("invalid order: %d %s", r.status, r.body)
	}

	// The status moves as the payment and shipment functions advance it.
	if g := do(t, "GET", base+"/v1/orders/"+o.ID, "", nil); g.status != http.StatusOK || g.order(t).Status != "pending" {
		t.Fatalf("get %d %s", g.status, g.body)
	}
	db, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := orders.Advance(context.Background(), db, o.ID, orders.Paid, uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	if g := do(t, "GET", base+"/v1/orders/"+o.ID, "", nil); g.status != http.StatusOK || g.order(t).Status != "paid" {
		t.Fatalf("get after payment %d %s", g.status, g.body)
	}

	// Without its topic the API is not ready, but alive.
	if err := ps.Client.TopicAdminClient.DeleteTopic(context.Background(), &pubsubpb.DeleteTopicRequest{Topic: pubsubtest.TopicName(orderTopic)}); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", base+"/readyz", "", nil); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "publisher") {
		t.Fatalf("readyz without topic: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", base+"/healthz", "", nil); r.status != http.StatusOK {
		t.Fatalf("healthz %d", r.status)
	}
}

func TestConfigErrorListsEverythingMissing(t *testing.T) {
	var logs bytes.Buffer
	empty := func(string) string { return "" }
	lazy := app.NewLazy(func(ctx context.Context) (http.Handler, error) { return function.Build(ctx, empty) }, slog.New(slog.NewJSONHandler(&logs, nil)))
	srv := httptest.NewServer(app.WithHealthz(lazy))
	defer srv.Close()
	for _, path := range []string{"/v1/orders", "/readyz"} {
		r := do(t, "GET", srv.URL+path, "", nil)
		if r.status != http.StatusInternalServerError {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		for _, name := range []string{"FUNCTION_NAME", "GOOGLE_CLOUD_PROJECT", "DB_INSTANCE_CONNECTION_NAME", "DB_NAME", "DB_USER", "DATABASE_URL"} {
			if !strings.Contains(string(r.body), name) {
				t.Fatalf("%s: the message %q does not name %s", path, r.body, name)
			}
		}
	}
	if !strings.Contains(logs.String(), "FUNCTION_NAME") {
		t.Fatalf("config error not logged: %s", logs.String())
	}
	// Liveness does not need the configuration.
	if r := do(t, "GET", srv.URL+"/healthz", "", nil); r.status != http.StatusOK {
		t.Fatalf("healthz %d %s", r.status, r.body)
	}
}

func TestUnreachableDatabaseAtStartIsRetried(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1") // no credentials lookup
	env := map[string]string{
		"FUNCTION_NAME":        "ordersapi",
		"GOOGLE_CLOUD_PROJECT": pubsubtest.Project,
		"DATABASE_URL":         "postgres://nobody@127.0.0.1:1/none?connect_timeout=2",
	}
	builds := 0
	lazy := app.NewLazy(func(ctx context.Context) (http.Handler, error) {
		builds++
		return function.Build(ctx, func(k string) string { return env[k] })
	}, slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
	srv := httptest.NewServer(app.WithHealthz(lazy))
	defer srv.Close()
	for range 2 {
		if r := do(t, "GET", srv.URL+"/readyz", "", nil); r.status != http.StatusServiceUnavailable {
			t.Fatalf("readyz %d %s", r.status, r.body)
		}
	}
	if builds != 2 {
		t.Fatalf("%d builds, want a retry per request", builds)
	}
}
