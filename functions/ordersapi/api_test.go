package ordersapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/outbox"
	"example.com/platform/shared/testing/pubsubtest"
)

func TestCreatePublishesOrderCreated(t *testing.T) {
	s := newStack(t)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := do(t, "POST", s.url+"/v1/orders", validBody, map[string]string{"traceparent": "00-" + trace + "-00f067aa0ba902b7-01"})
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	o := r.order(t)
	if _, err := uuid.Parse(o.ID); err != nil {
		t.Fatalf("id %q", o.ID)
	}
	if loc := r.header.Get("Location"); loc != "/v1/orders/"+o.ID {
		t.Fatalf("Location %q", loc)
	}
	if o.Status != "pending" || o.Total != 2*1250+199 || o.CustomerID != "cust-42" || o.Currency != "EUR" || len(o.Items) != 2 ||
		len(o.StatusHistory) != 1 || o.StatusHistory[0].Status != "pending" || o.CreatedAt.IsZero() {
		t.Fatalf("order %+v", o)
	}
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages on %s, want 1", len(msgs), orderTopic)
	}
	checkOrderCreated(t, msgs[0], o)
	if tp := msgs[0].Attributes["traceparent"]; !strings.Contains(tp, trace) {
		t.Fatalf("traceparent %q does not continue the request's trace", tp)
	}
	// The history's first entry records the event that announced the order;
	// the outbox row is marked published.
	stored, err := orders.Load(context.Background(), s.pool, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.History[0].EventID != msgs[0].Attributes["ce-id"] {
		t.Fatalf("history event id %q, message ce-id %q", stored.History[0].EventID, msgs[0].Attributes["ce-id"])
	}
	var pending int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil || pending != 0 {
		t.Fatalf("pending outbox rows %d, err %v", pending, err)
	}
	// GET returns the same order.
	g := do(t, "GET", s.url+r.header.Get("Location"), "", nil)
	if g.status != http.StatusOK || !bytes.Equal(g.body, r.body) {
		t.Fatalf("GET %d %s, want the created order %s", g.status, g.body, r.body)
	}
}

func TestCreateValidation(t *testing.T) {
	s := newStack(t)
	item := `{"sku":"A-1","quantity":1,"unit_price":100}`
	withItems := func(items ...string) string {
		return `{"customer_id":"c","currency":"EUR","items":[` + strings.Join(items, ",") + `]}`
	}
	manyItems := make([]string, 101)
	for i := range manyItems {
		manyItems[i] = item
	}
	huge := `{"customer_id":"` + strings.Repeat("x", MaxBodyBytes) + `","currency":"EUR","items":[` + item + `]}`
	for _, c := range []struct {
		name   string
		body   string
		header map[string]string
		status int
		typ    string
		fields []string // every one must be named
	}{
		{"unknown field", `{"customer_id":"c","currency":"EUR","items":[` + item + `],"coupon":"FREE"}`, nil, 400, ProblemValidation, []string{"coupon"}},
		{"unknown item field", withItems(item, `{"sku":"A","quantity":1,"unit_price":1,"color":"red"}`), nil, 400, ProblemValidation, []string{"items[1].color"}},
		{"duplicate field", `{"customer_id":"c","customer_id":"d","currency":"EUR","items":[` + item + `]}`, nil, 400, ProblemValidation, []string{"customer_id"}},
		{"unknown currency", `{"customer_id":"c","currency":"EURO","items":[` + item + `]}`, nil, 400, ProblemValidation, []string{"currency"}},
		{"lower-case currency", `{"customer_id":"c","currency":"eur","items":[` + item + `]}`, nil, 400, ProblemValidation, []string{"currency"}},
		{"zero quantity", withItems(item, item, `{"sku":"A","quantity":0,"unit_price":1}`), nil, 400, ProblemValidation, []string{"items[2].quantity"}},
		{"quantity too large", withItems(`{"sku":"A","quantity":10001,"unit_price":1}`), nil, 400, ProblemValidation, []string{"items[0].quantity"}},
		{"fractional quantity", withItems(`{"sku":"A","quantity":1.5,"unit_price":1}`), nil, 400, ProblemValidation, []string{"items[0].quantity"}},
		{"exponent price", withItems(`{"sku":"A","quantity":1,"unit_price":1e3}`), nil, 400, ProblemValidation, []string{"items[0].unit_price"}},
		{"quantity as string", withItems(`{"sku":"A","quantity":"2","unit_price":1}`), nil, 400, ProblemValidation, []string{"items[0].quantity"}},
		{"negative price", withItems(`{"sku":"A","quantity":1,"unit_price":-1}`), nil, 400, ProblemValidation, []string{"items[0].unit_price"}},
		{"price too large", withItems(fmt.Sprintf(`{"sku":"A","quantity":1,"unit_price":%d}`, int64(MaxUnitPrice)+1)), nil, 400, ProblemValidation, []string{"items[0].unit_price"}},
		{"price overflows int64", withItems(`{"sku":"A","quantity":1,"unit_price":99999999999999999999}`), nil, 400, ProblemValidation, []string{"items[0].unit_price"}},
		{"bad sku", withItems(`{"sku":"a b","quantity":1,"unit_price":1}`), nil, 400, ProblemValidation, []string{"items[0].sku"}},
		{"item not an object", withItems(`"A-1"`), nil, 400, ProblemValidation, []string{"items[0]"}},
		{"missing item fields", withItems(`{}`), nil, 400, ProblemValidation, []string{"items[0].sku", "items[0].quantity", "items[0].unit_price"}},
		{"too many items", withItems(manyItems...), nil, 400, ProblemValidation, []string{"items"}},
		{"no items", withItems(), nil, 400, ProblemValidation, []string{"items"}},
		{"items not an array", `{"customer_id":"c","currency":"EUR","items":{}}`, nil, 400, ProblemValidation, []string{"items"}},
		{"missing everything", `{}`, nil, 400, ProblemValidation, []string{"customer_id", "currency", "items"}},
		{"null customer", `{"customer_id":null,"currency":"EUR","items":[` + item + `]}`, nil, 400, ProblemValidation, []string{"customer_id"}},
		{"blank customer", `{"customer_id":"  ","currency":"EUR","items":[` + item + `]}`, nil, 400, ProblemValidation, []string{"customer_id"}},
		{"control character in customer", `{"customer_id":"a\u0000b","currency":"EUR","items":[` + item + `]}`, nil, 400, ProblemValidation, []string{"customer_id"}},
		{"oversized body", huge, nil, 413, ProblemBodyTooLarge, []string{"body"}},
		{"wrong content type", validBody, map[string]string{"Content-Type": "text/plain"}, 415, ProblemUnsupportedMedia, []string{"Content-Type"}},
		{"no content type", validBody, map[string]string{"Content-Type": "<unset>"}, 415, ProblemUnsupportedMedia, []string{"Content-Type"}},
		{"latin-1 charset", validBody, map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}, 415, ProblemUnsupportedMedia, []string{"Content-Type"}},
		{"malformed JSON", `{"customer_id":"c",`, nil, 400, ProblemMalformed, []string{"body"}},
		{"syntax error", `{"customer_id" "c"}`, nil, 400, ProblemMalformed, []string{"body"}},
		{"trailing object", validBody + `{}`, nil, 400, ProblemMalformed, []string{"body"}},
		{"trailing garbage", validBody + ` x`, nil, 400, ProblemMalformed, []string{"body"}},
		{"not an object", `[1,2]`, nil, 400, ProblemMalformed, []string{"body"}},
		{"empty body", ``, map[string]string{"Content-Type": "application/json"}, 400, ProblemMalformed, []string{"body"}},
		{"invalid UTF-8", "{\"customer_id\":\"\xff\",\"currency\":\"EUR\",\"items\":[" + item + "]}", nil, 400, ProblemMalformed, []string{"body"}},
		{"idempotency key too long", validBody, map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, 400, ProblemValidation, []string{"Idempotency-Key"}},
		{"idempotency key with space", validBody, map[string]string{"Idempotency-Key": "a b"}, 400, ProblemValidation, []string{"Idempotency-Key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, "POST", s.url+"/v1/orders", c.body, c.header)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			p := r.problem(t)
			if p.Type != c.typ || p.Instance != "/v1/orders" || p.Detail == "" {
				t.Fatalf("problem %+v, want type %s", p, c.typ)
			}
			for _, f := range c.fields {
				if !p.hasField(f) {
					t.Fatalf("problem names %v, want %q among them: %s", p.fields(), f, r.body)
				}
			}
			for _, e := range p.Errors {
				if e.Message == "" {
					t.Fatalf("field %s without a message", e.Field)
				}
			}
		})
	}
	if n, m := s.counts(t); n != 0 || m != 0 {
		t.Fatalf("invalid requests wrote %d orders and %d outbox rows", n, m)
	}
}

func TestCreateAcceptsBoundaries(t *testing.T) {
	s := newStack(t)
	items := make([]string, MaxLineItems)
	for i := range items {
		items[i] = fmt.Sprintf(`{"sku":"SKU-%d","quantity":%d,"unit_price":%d}`, i, MaxQuantity, int64(MaxUnitPrice))
	}
	body := `{"customer_id":"c","currency":"JPY","items":[` + strings.Join(items, ",") + `]}`
	r := do(t, "POST", s.url+"/v1/orders", body, map[string]string{"Content-Type": "application/json; charset=UTF-8"})
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if o := r.order(t); o.Total != MaxLineItems*MaxQuantity*MaxUnitPrice {
		t.Fatalf("total %d", o.Total)
	}
	// A free item is fine.
	if r := do(t, "POST", s.url+"/v1/orders", `{"customer_id":"c","currency":"EUR","items":[{"sku":"GIFT","quantity":1,"unit_price":0}]}`, nil); r.status != http.StatusCreated {
		t.Fatalf("free item: %d %s", r.status, r.body)
	}
}

func TestIdempotencyKeyReplaysTheResponse(t *testing.T) {
	s := newStack(t)
	key := map[string]string{"Idempotency-Key": "retry-" + uuid.NewString()}
	first := do(t, "POST", s.url+"/v1/orders", validBody, key)
	if first.status != http.StatusCreated {
		t.Fatalf("status %d: %s", first.status, first.body)
	}
	o := first.order(t)
	// The same request, spelled differently (key order, spacing): same hash.
	respelled := `{ "items": [ {"unit_price":1250, "quantity":2, "sku":"BOOK-1"}, {"sku":"PEN-7","unit_price":199,"quantity":1} ],
		"currency": "EUR", "customer_id": "cust-42" }`
	for i, body := range []string{validBody, respelled} {
		again := do(t, "POST", s.url+"/v1/orders", body, key)
		if again.status != http.StatusCreated || !bytes.Equal(again.body, first.body) ||
			again.header.Get("Location") != first.header.Get("Location") || again.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay %d: %d %v %s\nwant %s", i, again.status, again.header, again.body, first.body)
		}
	}
	// Still identical after the order moved on: the response is the
	// creation's, GET shows the current state.
	if _, err := orders.Advance(context.Background(), s.pool, o.ID, orders.Paid, "ev-1"); err != nil {
		t.Fatal(err)
	}
	if again := do(t, "POST", s.url+"/v1/orders", validBody, key); !bytes.Equal(again.body, first.body) {
		t.Fatalf("replay after payment: %s\nwant %s", again.body, first.body)
	}
	if g := do(t, "GET", s.url+"/v1/orders/"+o.ID, "", nil).order(t); g.Status != "paid" {
		t.Fatalf("GET status %s", g.Status)
	}
	if n, m := s.counts(t); n != 1 || m != 1 {
		t.Fatalf("%d orders, %d outbox rows; want 1 and 1", n, m)
	}
	if msgs := s.messages(); len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}

	// Same key, different request: 422, nothing written.
	other := strings.Replace(validBody, `"quantity":2`, `"quantity":3`, 1)
	r := do(t, "POST", s.url+"/v1/orders", other, key)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	p := r.problem(t)
	if p.Type != ProblemIdempotencyReuse || !strings.Contains(p.Detail, "idempotency key reused with a different request") || !p.hasField("Idempotency-Key") {
		t.Fatalf("problem %+v", p)
	}
	if n, m := s.counts(t); n != 1 || m != 1 {
		t.Fatalf("after reuse: %d orders, %d outbox rows", n, m)
	}
	// Another key is another order; no key is always a new order.
	for _, h := range []map[string]string{{"Idempotency-Key": "other-key"}, nil, nil} {
		if r := do(t, "POST", s.url+"/v1/orders", validBody, h); r.status != http.StatusCreated || r.order(t).ID == o.ID {
			t.Fatalf("new order: %d %s", r.status, r.body)
		}
	}
	if n, _ := s.counts(t); n != 4 {
		t.Fatalf("%d orders, want 4", n)
	}
}

func TestConcurrentRequestsWithOneKeyCreateOneOrder(t *testing.T) {
	s := newStack(t)
	const n = 20
	key := map[string]string{"Idempotency-Key": "concurrent-" + uuid.NewString()}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		bodies = map[string]int{}
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			r := do(t, "POST", s.url+"/v1/orders", validBody, key)
			mu.Lock()
			defer mu.Unlock()
			bodies[fmt.Sprintf("%d %s %s", r.status, r.header.Get("Location"), r.body)]++
		})
	}
	close(start)
	wg.Wait()
	if len(bodies) != 1 {
		t.Fatalf("%d different responses, want 1: %v", len(bodies), bodies)
	}
	for b := range bodies {
		if !strings.HasPrefix(b, "201 /v1/orders/") {
			t.Fatalf("response %s", b)
		}
	}
	if o, m := s.counts(t); o != 1 || m != 1 {
		t.Fatalf("%d orders, %d outbox rows; want 1 and 1", o, m)
	}
	if msgs := s.messages(); len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
}

func TestPublishFailureLeavesTheRowForTheRelay(t *testing.T) {
	s := newStack(t, withoutTopic())
	r := do(t, "POST", s.url+"/v1/orders", validBody, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	o := r.order(t)
	var (
		attempts  int
		published *time.Time
	)
	row := func() {
		t.Helper()
		err := s.pool.QueryRow(context.Background(), `SELECT attempts, published_at FROM outbox WHERE ordering_key = $1`, o.ID).Scan(&attempts, &published)
		if err != nil {
			t.Fatal(err)
		}
	}
	row()
	if published != nil || attempts != 1 {
		t.Fatalf("outbox row: attempts %d, published %v; want one failed attempt, pending", attempts, published)
	}
	if got, _ := orders.Get(context.Background(), s.pool, o.ID); got != orders.Pending {
		t.Fatalf("status %s", got)
	}

	// The relay cannot publish either while the topic is missing.
	st := relay(t, s)
	if st.Published != 0 || st.Failed != 1 {
		t.Fatalf("relay without topic: %+v", st)
	}
	s.ps.CreateTopic(t, orderTopic)
	st = relay(t, s)
	if st.Published != 1 || st.Failed != 0 {
		t.Fatalf("relay: %+v", st)
	}
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	checkOrderCreated(t, msgs[0], o)
	row()
	if published == nil {
		t.Fatal("row not marked published")
	}
	// Published once: the next call has nothing to do.
	if st := relay(t, s); st.Published != 0 || st.Claimed != 0 {
		t.Fatalf("second relay: %+v", st)
	}
	if msgs := s.messages(); len(msgs) != 1 {
		t.Fatalf("%d messages after the second relay, want 1", len(msgs))
	}
}

// relay runs one pass of the outbox relay (the relay service,
// functions/relay, drains with such passes).
func relay(t *testing.T, s *stack) outbox.Stats {
	t.Helper()
	st, err := s.relay.PublishPending(context.Background())
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	return st
}

func TestGetShowsStatusTransitions(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	create := func() OrderView {
		r := do(t, "POST", s.url+"/v1/orders", validBody, nil)
		if r.status != http.StatusCreated {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		return r.order(t)
	}
	get := func(id string) OrderView {
		t.Helper()
		r := do(t, "GET", s.url+"/v1/orders/"+id, "", nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %d %s", r.status, r.body)
		}
		return r.order(t)
	}
	statuses := func(o OrderView) string {
		var ss []string
		for _, c := range o.StatusHistory {
			ss = append(ss, c.Status)
		}
		return o.Status + " " + strings.Join(ss, ">")
	}
	o := create()
	for _, step := range []struct {
		to   orders.Status
		want string
	}{
		{orders.Paid, "paid pending>paid"},
		{orders.Shipped, "shipped pending>paid>shipped"},
		{orders.Paid, "shipped pending>paid>shipped"}, // a late payment.processed changes nothing
	} {
		if _, err := orders.Advance(ctx, s.pool, o.ID, step.to, uuid.NewString()); err != nil {
			t.Fatal(err)
		}
		got := get(o.ID)
		if statuses(got) != step.want {
			t.Fatalf("after %s: %s, want %s", step.to, statuses(got), step.want)
		}
		if got.UpdatedAt.Before(got.CreatedAt) || got.StatusHistory[len(got.StatusHistory)-1].At.Before(got.CreatedAt) {
			t.Fatalf("times %+v", got)
		}
	}
	failed := create()
	if _, err := orders.Advance(ctx, s.pool, failed.ID, orders.PaymentFailed, "ev"); err != nil {
		t.Fatal(err)
	}
	if got := get(failed.ID); statuses(got) != "payment_failed pending>payment_failed" {
		t.Fatalf("failed order: %s", statuses(got))
	}
	// Upper-case ids name the same order.
	if got := get(strings.ToUpper(failed.ID)); got.ID != failed.ID {
		t.Fatalf("upper-case id: %+v", got)
	}

	r := do(t, "GET", s.url+"/v1/orders/"+uuid.NewString(), "", nil)
	if r.status != http.StatusNotFound || r.problem(t).Type != ProblemNotFound {
		t.Fatalf("unknown id: %d %s", r.status, r.body)
	}
	for _, bad := range []string{"42", "not-a-uuid", uuid.Nil.String(), strings.ReplaceAll(uuid.NewString(), "-", "")} {
		r := do(t, "GET", s.url+"/v1/orders/"+bad, "", nil)
		if r.status != http.StatusBadRequest || !r.problem(t).hasField("id") {
			t.Fatalf("GET %s: %d %s", bad, r.status, r.body)
		}
	}
}

func TestRoutingProblems(t *testing.T) {
	s := newStack(t)
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/v1/orders", 405, "POST"},
		{"DELETE", "/v1/orders/" + uuid.NewString(), 405, "GET, HEAD"},
		{"POST", "/healthz", 405, "GET, HEAD"},
		{"GET", "/v2/orders", 404, ""},
		{"GET", "/", 404, ""},
	} {
		r := do(t, c.method, s.url+c.path, "", nil)
		if r.status != c.status || r.header.Get("Allow") != c.allow {
			t.Fatalf("%s %s: %d Allow %q: %s", c.method, c.path, r.status, r.header.Get("Allow"), r.body)
		}
		r.problem(t)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	s := newStack(t)
	if r := do(t, "GET", s.url+"/healthz", "", nil); r.status != 200 || !strings.Contains(string(r.body), `"ok"`) {
		t.Fatalf("healthz %d %s", r.status, r.body)
	}
	r := do(t, "GET", s.url+"/readyz", "", nil)
	var rd readiness
	if err := json.Unmarshal(r.body, &rd); err != nil || r.status != 200 || rd.Status != "ready" ||
		rd.Checks["database"] != "ok" || rd.Checks["publisher"] != "ok" {
		t.Fatalf("readyz %d %s", r.status, r.body)
	}

	// Unreachable database, missing topic: not ready, both named.
	dead, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	s2 := newStack(t, withoutTopic(), func(c *stackConfig) {
		c.checks = func(st *stack) []Check {
			return []Check{DatabaseCheck(dead), TopicCheck(st.ps.Client, pubsubtest.Project, orderTopic)}
		}
	})
	r = do(t, "GET", s2.url+"/readyz", "", nil)
	rd = readiness{}
	if err := json.Unmarshal(r.body, &rd); err != nil || r.status != http.StatusServiceUnavailable || rd.Status != "unavailable" ||
		rd.Checks["database"] == "ok" || !strings.Contains(rd.Checks["publisher"], "does not exist") {
		t.Fatalf("readyz %d %s", r.status, r.body)
	}
	// Liveness does not depend on them.
	if r := do(t, "GET", s2.url+"/healthz", "", nil); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
}

// failingDB is a database whose Begin fails or panics.
type failingDB struct {
	DB
	panic bool
}

func (f failingDB) Begin(context.Context) (pgx.Tx, error) {
	if f.panic {
		panic("boom")
	}
	return nil, fmt.Errorf("begin: %w", context.DeadlineExceeded)
}

func TestDatabaseFailureAndPanic(t *testing.T) {
	s := newStack(t)
	serve := func(db DB) string {
		srv := httptest.NewServer(NewHandler(&Service{DB: db, Outbox: s.svc.Outbox}, Options{}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	r := do(t, "POST", serve(failingDB{DB: s.pool})+"/v1/orders", validBody, nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || r.problem(t).Type != ProblemUnavailable {
		t.Fatalf("transient failure: %d %v %s", r.status, r.header, r.body)
	}
	url := serve(failingDB{DB: s.pool, panic: true})
	r = do(t, "POST", url+"/v1/orders", validBody, nil)
	if r.status != http.StatusInternalServerError || r.problem(t).Type != ProblemInternal || strings.Contains(string(r.body), "boom") {
		t.Fatalf("panic: %d %s", r.status, r.body)
	}
	// The server survives and serves the next request.
	if r := do(t, "GET", url+"/v1/orders/"+uuid.NewString(), "", nil); r.status != http.StatusNotFound {
		t.Fatalf("after panic: %d %s", r.status, r.body)
	}
}
