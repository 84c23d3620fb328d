package payment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"example.com/platform/shared/app"
	"example.com/platform/shared/events"
	"example.com/platform/shared/manifest"
	"example.com/platform/shared/orders"
	"example.com/platform/shared/testing/fakegateway"
	"example.com/platform/shared/testing/fftest"
	"example.com/platform/shared/testing/logbuf"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
)

// TestThroughTheFramework serves the registered function with
// functions-framework-go, configured only through the environment, the way
// Cloud Run runs it. The lazy handler is built once per test binary, so
// this is the only test that sends requests through the framework.
func TestThroughTheFramework(t *testing.T) {
	fx := frameworkFixture(t)
	ps, gw, dbURL := fx.pubsub, fx.gw, fx.dbURL
	fnURL := fftest.Start(t, EntryPoint)

	// The first request builds the handler (and migrates the database);
	// orders are inserted afterwards through a pool of our own.
	e := &env{t: t, pubsub: ps, gw: gw, logs: &logbuf.Buffer{}}
	badID := uuid.NewString()
	bad := messagingMessage{Data: []byte(`{`), Attributes: map[string]string{
		events.AttrID: badID, events.AttrSource: "//example.com/orders-api", events.AttrSpecVersion: "1.0",
		events.AttrType: events.TypeOrderCreated, events.AttrSubject: "x", events.AttrTime: time.Now().UTC().Format(time.RFC3339),
		events.AttrContentType: events.ContentTypeJSON,
	}}
	want(t, "bad payload", push(t, fnURL, bad), http.StatusNoContent)
	if n := countByID(published(ps, "payment.dlq", ""), badID); n != 1 {
		t.Fatalf("dead letters of the bad payload: %d", n)
	}

	deps, err := app.Open(context.Background(), app.Env{Function: "payment-test", Database: app.Database{URL: dbURL}}, app.Needs{Database: true}, nil)
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
	_, err := build(context.Background(), func(string) string { return "" })
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
	_, err = build(context.Background(), func(k string) string { return vars[k] })
	if !errors.Is(err, app.ErrConfig) || !strings.Contains(err.Error(), EnvGatewayURL) || !strings.Contains(err.Error(), EnvGatewayTimeout) {
		t.Fatalf("invalid values not reported: %v", err)
	}

	// Served lazily, the message is the 500 answer of every request.
	lazy := app.NewLazy(func(ctx context.Context) (http.Handler, error) {
		return build(ctx, func(string) string { return "" })
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
	timeout, err := manifest.Seconds(m.Resources.Timeout)
	must(t, err)
	if HandlerTimeout >= time.Duration(timeout)*time.Second {
		t.Errorf("HandlerTimeout %v is not below the function timeout %ds", HandlerTimeout, timeout)
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

// fixture is what the framework-served function is configured with. The
// lazy handler is built once per test binary, so the fixture lives as long
// as the binary (closed by TestMain), and TestThroughTheFramework can run
// again under -count.
type fixture struct {
	pubsub *pubsubtest.Fake
	gw     *fakegateway.Server
	dbURL  string
	close  []func()
}

var (
	fxOnce sync.Once
	fx     *fixture
	fxErr  error
)

func frameworkFixture(t *testing.T) *fixture {
	t.Helper()
	fxOnce.Do(func() { fx, fxErr = newFixture() })
	if fxErr != nil {
		t.Fatal(fxErr)
	}
	return fx
}

func newFixture() (_ *fixture, err error) {
	f := &fixture{}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	srv := pstest.NewServer()
	f.close = append(f.close, func() { srv.Close() })
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	f.close = append(f.close, func() { conn.Close() })
	client, err := pubsub.NewClient(context.Background(), pubsubtest.Project, option.WithGRPCConn(conn))
	if err != nil {
		return nil, err
	}
	f.close = append(f.close, func() { client.Close() })
	f.pubsub = &pubsubtest.Fake{Server: srv, Client: client}
	for _, tp := range topics {
		if _, err := client.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: pubsubtest.TopicName(tp)}); err != nil {
			return nil, fmt.Errorf("create topic %s: %w", tp, err)
		}
	}

	cluster, err := pgtest.Start()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, cluster.AdminURL)
	if err != nil {
		return nil, err
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("payment_fftest_%d", os.Getpid())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, err
	}
	f.close = append(f.close, func() {
		if a, err := pgx.Connect(ctx, cluster.AdminURL); err == nil {
			a.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			a.Close(ctx)
		}
	})
	// The same rule as pgtest: a URL gets the database as its path, a
	// key=value string a dbname.
	if u, err := url.Parse(cluster.AdminURL); err == nil && u.Scheme != "" {
		u.Path = "/" + name
		f.dbURL = u.String()
	} else {
		f.dbURL = cluster.AdminURL + " dbname=" + name
	}

	g := fakegateway.New(fakegateway.Config{APIKey: "e2e-key"})
	hs := httptest.NewServer(g)
	f.close = append(f.close, func() { g.Close(); hs.Close() })
	f.gw = &fakegateway.Server{Gateway: g, URL: hs.URL}

	for k, v := range map[string]string{
		"PUBSUB_EMULATOR_HOST": srv.Addr,
		app.EnvFunction:        "payment",
		app.EnvProject:         pubsubtest.Project,
		app.EnvDatabaseURL:     f.dbURL,
		EnvGatewayURL:          hs.URL,
		EnvGatewayAPIKey:       "e2e-key",
		EnvGatewayTimeout:      "2s",
		app.EnvLogLevel:        "error",
	} {
		os.Setenv(k, v)
	}
	return f, nil
}

// Close releases the fixture, newest first.
func (f *fixture) Close() {
	for i := len(f.close) - 1; i >= 0; i-- {
		f.close[i]()
	}
	f.close = nil
}
