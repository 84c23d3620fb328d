package ordersapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"example.com/platform/shared/domain"
	"example.com/platform/shared/domain/orders"
	"example.com/platform/shared/messaging"
)

// createOrder creates an order through the API.
func (s *stack) createOrder(t *testing.T) OrderView {
	t.Helper()
	r := do(t, "POST", s.url+"/v1/orders", validBody, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	return r.order(t)
}

func cancelURL(s *stack, id string) string { return s.url + "/v1/orders/" + id + ":cancel" }

// cancelledMessages returns the order.cancelled messages of order id.
func (s *stack) cancelledMessages(id string) []messaging.Message {
	var out []messaging.Message
	for _, m := range s.messages() {
		if m.Attributes["ce-type"] == domain.TypeOrderCancelled && m.Attributes["ce-subject"] == id {
			out = append(out, m)
		}
	}
	return out
}

func historyOf(o OrderView) string {
	var ss []string
	for _, c := range o.StatusHistory {
		ss = append(ss, c.Status)
	}
	return o.Status + " " + strings.Join(ss, ">")
}

func TestCancelPublishesOrderCancelled(t *testing.T) {
	s := newStack(t)
	o := s.createOrder(t)
	r := do(t, "POST", cancelURL(s, o.ID), `{"reason":"  changed my mind  "}`, nil)
	if r.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	got := r.order(t)
	if historyOf(got) != "cancelled pending>cancelled" || got.ID != o.ID || got.Total != o.Total {
		t.Fatalf("order %+v", got)
	}
	msgs := s.cancelledMessages(o.ID)
	if len(msgs) != 1 {
		t.Fatalf("%d order.cancelled messages, want 1", len(msgs))
	}
	m := msgs[0]
	a := m.Attributes
	if a["ce-id"] != CancelEventID(o.ID) || a["ce-source"] != EventSource || m.OrderingKey != o.ID ||
		a["ce-dataschema"] != "https://example.com/schemas/events/"+domain.TypeOrderCancelled+".json" {
		t.Fatalf("message %v, ordering key %q", a, m.OrderingKey)
	}
	var p domain.OrderCancelled
	if err := json.Unmarshal(m.Data, &p); err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	last := got.StatusHistory[len(got.StatusHistory)-1]
	if p.OrderID != o.ID || p.Reason != "changed my mind" || p.PreviousStatus != "pending" || !p.CancelledAt.Equal(last.At) {
		t.Fatalf("payload %+v, history %+v", p, got.StatusHistory)
	}
	// Both events of the order went to the one topic, in order.
	all := s.messages()
	if len(all) != 2 || all[0].Attributes["ce-type"] != domain.TypeOrderCreated || all[1].Attributes["ce-type"] != domain.TypeOrderCancelled {
		t.Fatalf("messages on %s: %v", orderTopic, all)
	}
	var topic, key string
	if err := s.pool.QueryRow(context.Background(),
		`SELECT topic, ordering_key FROM outbox WHERE attributes->>'ce-id' = $1 AND published_at IS NOT NULL`, CancelEventID(o.ID)).Scan(&topic, &key); err != nil {
		t.Fatalf("outbox row of the event: %v", err)
	}
	if topic != orderTopic || key != o.ID {
		t.Fatalf("outbox row on %s with key %s", topic, key)
	}
	stored, err := orders.Load(context.Background(), s.pool, o.ID)
	if err != nil || stored.History[1].EventID != CancelEventID(o.ID) {
		t.Fatalf("history %+v %v", stored.History, err)
	}

	// Cancelling again (a retry, another reason, an upper-case id)
	// answers the cancelled order and emits nothing.
	for _, body := range []string{`{"reason":"again"}`, ``} {
		again := do(t, "POST", cancelURL(s, strings.ToUpper(o.ID)), body, nil)
		if again.status != http.StatusOK || historyOf(again.order(t)) != "cancelled pending>cancelled" {
			t.Fatalf("second cancel: %d %s", again.status, again.body)
		}
	}
	if n, m := s.counts(t); n != 1 || m != 2 {
		t.Fatalf("%d orders, %d outbox rows; want 1 and 2", n, m)
	}
	if msgs := s.messages(); len(msgs) != 2 {
		t.Fatalf("%d messages after the retries, want 2", len(msgs))
	}
	if g := do(t, "GET", s.url+"/v1/orders/"+o.ID, "", nil); g.status != http.StatusOK || g.order(t).Status != "cancelled" {
		t.Fatalf("GET: %d %s", g.status, g.body)
	}
}

func TestCancelFromEveryCancellableStatus(t *testing.T) {
	s := newStack(t)
	for _, path := range [][]orders.Status{{orders.Paid}, {orders.PaymentFailed}} {
		o := s.createOrder(t)
		for _, st := range path {
			if _, err := orders.Advance(context.Background(), s.pool, o.ID, st, uuid.NewString()); err != nil {
				t.Fatal(err)
			}
		}
		r := do(t, "POST", cancelURL(s, o.ID), "", nil)
		if r.status != http.StatusOK {
			t.Fatalf("cancel from %s: %d %s", path[0], r.status, r.body)
		}
		if want := "cancelled pending>" + string(path[0]) + ">cancelled"; historyOf(r.order(t)) != want {
			t.Fatalf("order %s, want %s", historyOf(r.order(t)), want)
		}
		msgs := s.cancelledMessages(o.ID)
		if len(msgs) != 1 {
			t.Fatalf("%d order.cancelled messages", len(msgs))
		}
		var p domain.OrderCancelled
		if err := json.Unmarshal(msgs[0].Data, &p); err != nil || p.PreviousStatus != string(path[0]) || p.Reason != "" {
			t.Fatalf("payload %s: %v", msgs[0].Data, err)
		}
		if strings.Contains(string(msgs[0].Data), `"reason"`) {
			t.Fatalf("empty reason sent: %s", msgs[0].Data)
		}
	}
}

func TestCancelShippedOrderConflicts(t *testing.T) {
	s := newStack(t)
	o := s.createOrder(t)
	for _, st := range []orders.Status{orders.Paid, orders.Shipped} {
		if _, err := orders.Advance(context.Background(), s.pool, o.ID, st, uuid.NewString()); err != nil {
			t.Fatal(err)
		}
	}
	r := do(t, "POST", cancelURL(s, o.ID), `{"reason":"too late"}`, nil)
	if r.status != http.StatusConflict {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	p := r.problem(t)
	if p.Type != ProblemOrderShipped || !strings.Contains(p.Detail, "order already shipped") || p.Instance != "/v1/orders/"+o.ID+":cancel" {
		t.Fatalf("problem %+v", p)
	}
	if st, _ := orders.Get(context.Background(), s.pool, o.ID); st != orders.Shipped {
		t.Fatalf("status %s", st)
	}
	if _, m := s.counts(t); m != 1 {
		t.Fatalf("%d outbox rows, want only the order.created one", m)
	}
	if len(s.cancelledMessages(o.ID)) != 0 {
		t.Fatal("order.cancelled published for a shipped order")
	}
}

func TestCancelRouting(t *testing.T) {
	s := newStack(t)
	o := s.createOrder(t)
	for _, c := range []struct {
		method, path string
		status       int
		typ, allow   string
	}{
		{"POST", "/v1/orders/" + uuid.NewString() + ":cancel", 404, ProblemNotFound, ""},
		{"POST", "/v1/orders/42:cancel", 400, ProblemValidation, ""},
		{"POST", "/v1/orders/" + uuid.Nil.String() + ":cancel", 400, ProblemValidation, ""},
		{"POST", "/v1/orders/:cancel", 400, ProblemValidation, ""},
		{"POST", "/v1/orders/" + o.ID + ":refund", 404, ProblemNotFound, ""},
		{"POST", "/v1/orders/" + o.ID + ":", 404, ProblemNotFound, ""},
		{"POST", "/v1/orders/" + o.ID + ":cancel:cancel", 404, ProblemNotFound, ""},
		{"POST", "/v1/orders/" + o.ID + ":cancel/x", 404, ProblemNotFound, ""},
		{"POST", "/v1/orders/" + o.ID, 405, ProblemMethodNotAllowed, "GET, HEAD"},
		{"GET", "/v1/orders/" + o.ID + ":cancel", 405, ProblemMethodNotAllowed, "POST"},
		{"DELETE", "/v1/orders/" + o.ID + ":cancel", 405, ProblemMethodNotAllowed, "POST"},
		{"GET", "/v1/orders/" + o.ID + ":refund", 404, ProblemNotFound, ""},
		{"DELETE", "/v1/orders/" + o.ID + ":refund", 404, ProblemNotFound, ""},
	} {
		r := do(t, c.method, s.url+c.path, "", nil)
		if r.status != c.status || r.header.Get("Allow") != c.allow {
			t.Fatalf("%s %s: %d Allow %q: %s", c.method, c.path, r.status, r.header.Get("Allow"), r.body)
		}
		if p := r.problem(t); p.Type != c.typ {
			t.Fatalf("%s %s: problem %+v", c.method, c.path, p)
		}
	}
	if st, _ := orders.Get(context.Background(), s.pool, o.ID); st != orders.Pending {
		t.Fatalf("status %s", st)
	}
}

func TestCancelBodyValidation(t *testing.T) {
	s := newStack(t)
	o := s.createOrder(t)
	for _, c := range []struct {
		name   string
		body   string
		header map[string]string
		status int
		typ    string
		field  string
	}{
		{"malformed JSON", `{"reason":`, nil, 400, ProblemMalformed, "body"},
		{"not an object", `"stop"`, nil, 400, ProblemMalformed, "body"},
		{"trailing data", `{} {}`, nil, 400, ProblemMalformed, "body"},
		{"invalid UTF-8", "{\"reason\":\"\xff\"}", nil, 400, ProblemMalformed, "body"},
		{"unknown field", `{"reason":"x","refund":false}`, nil, 400, ProblemValidation, "refund"},
		{"duplicate field", `{"reason":"x","reason":"y"}`, nil, 400, ProblemValidation, "reason"},
		{"reason not a string", `{"reason":42}`, nil, 400, ProblemValidation, "reason"},
		{"null reason", `{"reason":null}`, nil, 400, ProblemValidation, "reason"},
		{"reason too long", `{"reason":"` + strings.Repeat("r", MaxReasonBytes+1) + `"}`, nil, 400, ProblemValidation, "reason"},
		{"control character", `{"reason":"a\u0000b"}`, nil, 400, ProblemValidation, "reason"},
		{"oversized body", `{"reason":"` + strings.Repeat("r", MaxCancelBodyBytes) + `"}`, nil, 413, ProblemBodyTooLarge, "body"},
		{"wrong content type", `{"reason":"x"}`, map[string]string{"Content-Type": "text/plain"}, 415, ProblemUnsupportedMedia, "Content-Type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, "POST", cancelURL(s, o.ID), c.body, c.header)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			p := r.problem(t)
			if p.Type != c.typ || !p.hasField(c.field) || p.Detail == "" {
				t.Fatalf("problem %+v, want type %s naming %s", p, c.typ, c.field)
			}
		})
	}
	if st, _ := orders.Get(context.Background(), s.pool, o.ID); st != orders.Pending {
		t.Fatalf("invalid requests changed the status to %s", st)
	}
	if _, m := s.counts(t); m != 1 {
		t.Fatalf("invalid requests wrote %d outbox rows", m-1)
	}
	// The longest reason fits even with every character escaped; white
	// space alone is no body.
	longest := `{"reason":"` + strings.Repeat(`\u0041`, MaxReasonBytes) + `"}`
	if r := do(t, "POST", cancelURL(s, o.ID), longest, nil); r.status != http.StatusOK {
		t.Fatalf("longest reason: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", cancelURL(s, o.ID), " \n", map[string]string{"Content-Type": "<unset>"}); r.status != http.StatusOK {
		t.Fatalf("blank body: %d %s", r.status, r.body)
	}
}

// TestConcurrentCancelsEmitOnce: simultaneous cancellations of one order
// (a client retrying, two operators) all answer 200; one event exists.
func TestConcurrentCancelsEmitOnce(t *testing.T) {
	s := newStack(t)
	o := s.createOrder(t)
	const n = 10
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			codes[i] = do(t, "POST", cancelURL(s, o.ID), "", nil).status
		})
	}
	close(start)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	if len(s.cancelledMessages(o.ID)) != 1 {
		t.Fatalf("%d order.cancelled messages", len(s.cancelledMessages(o.ID)))
	}
	if _, m := s.counts(t); m != 2 {
		t.Fatalf("%d outbox rows, want 2", m)
	}
}

// TestCancelNeverOvertakesItsOrderCreated: when order.created could not be
// published after commit, the cancellation's publish after commit leaves
// its row behind it, and the relay publishes both in order.
func TestCancelNeverOvertakesItsOrderCreated(t *testing.T) {
	s := newStack(t, withoutTopic())
	o := s.createOrder(t)
	if r := do(t, "POST", cancelURL(s, o.ID), "", nil); r.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	s.ps.CreateTopic(t, orderTopic)
	if st := relay(t, s); st.Published != 2 {
		t.Fatalf("relay: %+v", st)
	}
	msgs := s.messages()
	if len(msgs) != 2 || msgs[0].Attributes["ce-type"] != domain.TypeOrderCreated || msgs[1].Attributes["ce-type"] != domain.TypeOrderCancelled {
		t.Fatalf("messages %v", msgs)
	}
}

func TestCancelDatabaseFailure(t *testing.T) {
	s := newStack(t)
	srv := httptest.NewServer(NewHandler(&Service{DB: failingDB{DB: s.pool}, Outbox: s.svc.Outbox}, Options{}))
	t.Cleanup(srv.Close)
	url := srv.URL
	r := do(t, "POST", url+"/v1/orders/"+uuid.NewString()+":cancel", "", nil)
	if r.status != http.StatusServiceUnavailable || r.problem(t).Type != ProblemUnavailable {
		t.Fatalf("transient failure: %d %s", r.status, r.body)
	}
}
