package payment

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/platform/shared/app"
	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/fakegateway"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/events"
	"example.com/platform/shared/manifest"
	"example.com/platform/shared/testing/fftest"
	"example.com/platform/shared/testing/logbuf"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
)

// TestThroughTheFramework serves the registered function with
// functions-framework-go, configured only through the environment, the way
// Cloud Run runs it. The framework's server lives as long as the test
// binary; lazy.Reset makes the first request of each run build the
// handler from this run's environment.
func TestThroughTheFramework(t *testing.T) {
	ps := pubsubtest.New(t)
	for _, tp := range topics {
		ps.CreateTopic(t, tp)
	}
	gw := fakegateway.NewServer(t, fakegateway.Config{APIKey: "e2e-key"})
	dbURL := pgtest.NewDatabase(t)
	for k, v := range map[string]string{
		"PUBSUB_EMULATOR_HOST": ps.Server.Addr,
		app.EnvFunction:        "payment",
		app.EnvProject:         pubsubtest.Project,
		app.EnvDatabaseURL:     dbURL,
		app.EnvDBMigrate:       "true",
		EnvGatewayURL:          gw.URL,
		EnvGatewayAPIKey:       "e2e-key",
		EnvGatewayTimeout:      "2s",
		app.EnvLogLevel:        "error",
	} {
		t.Setenv(k, v)
	}
	function.Reset()
	fnURL := fftest.Start(t, EntryPoint)

	// The first request builds the handler (and migrates the database);
	// orders are inserted afterwards through a pool of our own.
	e := &env{t: t, pubsub: ps, gw: gw, logs: &logbuf.Buffer{}}
	badID := uuid.NewString()
	bad := messagingMessage{Data: []byte(`{`), Attributes: map[string]string{
		events.AttrID: badID, events.AttrSource: "//example.com/orders-api", events.AttrSpecVersion: "1.0",
		events.AttrType: domain.TypeOrderCreated, events.AttrSubject: "x", events.AttrTime: time.Now().UTC().Format(time.RFC3339),
		events.AttrContentType: events.ContentTypeJSON,
	}}
	want(t, "bad payload", push(t, fnURL, bad), http.StatusNoContent)
	if n := countByID(published(ps, "payment.dlq", ""), badID); n != 1 {
		t.Fatalf("dead letters of the bad payload: %d", n)
	}

	deps, err := app.Open(context.Background(), app.Env{Function: "payment-test", Database: app.Database{URL: dbURL, Migrate: true}}, app.Needs{Database: true}, nil)
	must(t, err)
	t.Cleanup(deps.Close)
	e.deps = deps

	must(t, gw.SetCustomer("declined", fakegateway.Behavior{Mode: fakegateway.Decline}))
	cases := []struct {
		name     string
		customer string
		push     func(*testing.T, string, messagingMessage) int
		status   orders.Status
		topic    string
	}{
		{"binary approve", "c1", push, orders.Paid, "payment.processed"},
		{"eventarc approve", "c2", pushEnvelope, orders.Paid, "payment.processed"},
		{"binary decline", "declined", push, orders.PaymentFailed, "payment.failed"},
		{"eventarc decline", "declined", pushEnvelope, orders.PaymentFailed, "payment.failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			o, m := e.order(c.customer, 700)
			want(t, "status code", c.push(t, fnURL, m), http.StatusNoContent)
			want(t, "duplicate", c.push(t, fnURL, m), http.StatusNoContent)
			want(t, "order status", e.status(o.OrderID), c.status)
			want(t, "events", len(published(ps, c.topic, o.OrderID)), 1)
			want(t, "charges", gw.ChargesFor(key(m)), 1)
			want(t, "gateway requests", gw.RequestsFor(key(m)), 1)
		})
	}
	t.Run("cancel after approval refunds once", func(t *testing.T) {
		e.t = t
		o, m := e.order("c4", 700)
		want(t, "charge", push(t, fnURL, m), http.StatusNoContent)
		_, cm := e.cancel(o)
		want(t, "cancel", push(t, fnURL, cm), http.StatusNoContent)
		want(t, "duplicate", pushEnvelope(t, fnURL, cm), http.StatusNoContent)
		want(t, "refunded events", len(published(ps, "payment.refunded", o.OrderID)), 1)
		want(t, "refunds", gw.RefundsFor(refundKey(cm, e.payments(o.OrderID)[0].ID)), 1)
	})
	t.Run("transient failure then success", func(t *testing.T) {
		e.t = t
		o, m := e.order("c3", 700)
		must(t, gw.SetOrder(o.OrderID, fakegateway.Behavior{Mode: fakegateway.Fail, Status: 502, Times: 3}))
		want(t, "during the outage", push(t, fnURL, m), http.StatusServiceUnavailable)
		want(t, "order status", e.status(o.OrderID), orders.Pending)
		want(t, "redelivery", push(t, fnURL, m), http.StatusNoContent)
		want(t, "order status", e.status(o.OrderID), orders.Paid)
		want(t, "charges", gw.ChargesFor(key(m)), 1)
	})
}

func TestConfigErrorListsEverythingMissing(t *testing.T) {
	_, err := function.Build(context.Background(), func(string) string { return "" })
	if !errors.Is(err, app.ErrConfig) {
		t.Fatalf("err %v, want a configuration error", err)
	}
	for _, name := range []string{app.EnvFunction, app.EnvProject, app.EnvDatabaseURL, EnvGatewayURL} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), EnvGatewayAPIKey) || strings.Contains(err.Error(), EnvGatewayTimeout) {
		t.Errorf("%q names an optional variable", err)
	}

	vars := map[string]string{
		app.EnvFunction: "payment", app.EnvProject: "p", app.EnvDatabaseURL: "postgres://localhost/x",
		EnvGatewayURL: "ftp://gateway", EnvGatewayTimeout: "-1s",
	}
	_, err = function.Build(context.Background(), func(k string) string { return vars[k] })
	if !errors.Is(err, app.ErrConfig) || !strings.Contains(err.Error(), EnvGatewayURL) || !strings.Contains(err.Error(), EnvGatewayTimeout) {
		t.Fatalf("invalid values not reported: %v", err)
	}

	// Served lazily, the message is the 500 answer of every request.
	lazy := app.NewLazy(func(ctx context.Context) (http.Handler, error) {
		return function.Build(ctx, func(string) string { return "" })
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	lazy.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusInternalServerError || !strings.Contains(string(body), EnvGatewayURL) {
		t.Fatalf("lazy answer %d %s", rec.Code, body)
	}
}

// TestManifestMatchesTheCode keeps function.yaml and the code in step.
func TestManifestMatchesTheCode(t *testing.T) {
	m, err := manifest.LoadFile("function.yaml")
	must(t, err)
	want(t, "entry_point", m.EntryPoint, EntryPoint)
	want(t, "idempotency", m.Idempotency, manifest.IdempotencyLease)
	if u := m.Env[EnvGatewayURL]; CheckGatewayURL(u) != nil || strings.Contains(u, "localhost") {
		t.Errorf("env.%s = %q, want a production URL", EnvGatewayURL, u)
	}
	if d, err := time.ParseDuration(m.Env[EnvGatewayTimeout]); err != nil || d <= 0 {
		t.Errorf("env.%s = %q", EnvGatewayTimeout, m.Env[EnvGatewayTimeout])
	}
	if _, ok := m.SecretEnv[EnvGatewayAPIKey]; !ok {
		t.Errorf("secret_env.%s missing", EnvGatewayAPIKey)
	}
	if len(m.Consumes) != 1 || m.Consumes[0].Topic != "order.created" {
		t.Errorf("consumes %+v", m.Consumes)
	}
	// The handler's budget holds at least one gateway call (manifest
	// validation keeps it below the ack deadline and the function timeout).
	handlerTimeout, err := manifest.Seconds(m.Resources.HandlerTimeout)
	must(t, err)
	if gw, _ := time.ParseDuration(m.Env[EnvGatewayTimeout]); time.Duration(handlerTimeout)*time.Second <= gw {
		t.Errorf("handler_timeout %ds does not hold one gateway call of %s", handlerTimeout, gw)
	}
}

func countByID(ms []messagingMessage, id string) int {
	n := 0
	for _, m := range ms {
		if m.Attributes[events.AttrID] == id {
			n++
		}
	}
	return n
}
