package ordersapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/shared/testing/pubsubtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const orderTopic = "order.created"

// stack is the API over a real PostgreSQL database and the real Pub/Sub
// client talking to pstest, served by httptest.
type stack struct {
	pool  *pgxpool.Pool
	ps    *pubsubtest.Fake
	svc   *Service
	relay *outbox.Relay
	url   string
}

type stackOpt func(*stackConfig)

type stackConfig struct {
	noTopic bool
	checks  func(*stack) []Check
}

func withoutTopic() stackOpt { return func(c *stackConfig) { c.noTopic = true } }

func newStack(t *testing.T, opts ...stackOpt) *stack {
	t.Helper()
	var cfg stackConfig
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	for _, m := range []func(context.Context, *pgxpool.Pool) error{outbox.Migrate, orders.Migrate} {
		if err := m(ctx, pool); err != nil {
			t.Fatal(err)
		}
	}
	ps := pubsubtest.New(t)
	if !cfg.noTopic {
		ps.CreateTopic(t, orderTopic)
	}
	pub := messaging.NewPubSub(ps.Client)
	t.Cleanup(pub.Stop)
	// A failed row is retried at once, not after the default backoff.
	relay, err := outbox.NewRelay(outbox.Config{Pool: pool, Publisher: pub, RetryBackoff: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{pool: pool, ps: ps, relay: relay, svc: &Service{DB: pool, Outbox: relay}}
	checks := []Check{DatabaseCheck(pool), TopicCheck(ps.Client, pubsubtest.Project, orderTopic)}
	if cfg.checks != nil {
		checks = cfg.checks(s)
	}
	srv := httptest.NewServer(NewHandler(s.svc, Options{Checks: checks}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t *testing.T) Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d: Content-Type %q, want application/problem+json; body %s", r.status, ct, r.body)
	}
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode problem %s: %v", r.body, err)
	}
	if p.Status != r.status || p.Type == "" || p.Title == "" || p.Instance == "" {
		t.Fatalf("problem %+v does not match status %d or lacks members", p, r.status)
	}
	return p
}

func (r response) order(t *testing.T) OrderView {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("status %d: Content-Type %q; body %s", r.status, ct, r.body)
	}
	var o OrderView
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("decode order %s: %v", r.body, err)
	}
	return o
}

func (p Problem) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

func (p Problem) hasField(f string) bool { return slices.Contains(p.fields(), f) }

func do(t *testing.T, method, url, body string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if v == "<unset>" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

const validBody = `{"customer_id":"cust-42","currency":"EUR","items":[{"sku":"BOOK-1","quantity":2,"unit_price":1250},{"sku":"PEN-7","quantity":1,"unit_price":199}]}`

// countRows returns the number of orders and outbox rows.
func (s *stack) counts(t *testing.T) (ordersN, outboxN int) {
	t.Helper()
	if err := s.pool.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM outbox)`).Scan(&ordersN, &outboxN); err != nil {
		t.Fatal(err)
	}
	return
}

// messages returns what pstest received on the order.created topic.
func (s *stack) messages() []messaging.Message {
	var out []messaging.Message
	for _, m := range s.ps.Server.Messages() {
		if m.Topic == pubsubtest.TopicName(orderTopic) {
			out = append(out, messaging.Message{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey})
		}
	}
	return out
}

// checkOrderCreated checks that m is the order.created event of o.
func checkOrderCreated(t *testing.T, m messaging.Message, o OrderView) {
	t.Helper()
	a := m.Attributes
	if a["ce-type"] != domain.TypeOrderCreated || a["ce-subject"] != o.ID || a["ce-source"] != EventSource ||
		a["ce-specversion"] != "1.0" || a["ce-id"] == "" || a["Content-Type"] != "application/json" {
		t.Fatalf("attributes %v", a)
	}
	if m.OrderingKey != o.ID {
		t.Fatalf("ordering key %q, want the order id %s", m.OrderingKey, o.ID)
	}
	var p domain.OrderCreated
	if err := json.Unmarshal(m.Data, &p); err != nil {
		t.Fatal(err)
	}
	if p.OrderID != o.ID || p.CustomerID != o.CustomerID || p.Currency != o.Currency || p.Total != o.Total ||
		!slices.Equal(p.Items, o.Items) || !p.CreatedAt.Equal(o.CreatedAt) {
		t.Fatalf("payload %+v does not match order %+v", p, o)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}
