package payment

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"example.com/platform/shared/breaker"
	"example.com/platform/shared/retry"
)

// scripted serves the given answers in turn (the last one repeats) and
// records what it received.
type scripted struct {
	answers []func(w http.ResponseWriter)
	calls   atomic.Int32
	last    atomic.Pointer[http.Request]
	body    atomic.Pointer[string]
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.calls.Add(1)) - 1
	b, _ := io.ReadAll(r.Body)
	str := string(b)
	s.body.Store(&str)
	s.last.Store(r)
	if n >= len(s.answers) {
		n = len(s.answers) - 1
	}
	s.answers[n](w)
}

func answer(status int, body string, hdr ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func newClient(t *testing.T, h http.Handler, cfg GatewayConfig) *HTTPGateway {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL + "/base/"
	if cfg.Retry == (retry.Policy{}) {
		cfg.Retry = fastRetry
	}
	g, err := NewHTTPGateway(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

var chargeReq = ChargeRequest{IdempotencyKey: "//example.com/orders-api/ev-1", OrderID: "o-1", CustomerID: "c-1", Amount: 1234, Currency: "EUR"}

func TestHTTPGatewayAnswers(t *testing.T) {
	cases := []struct {
		name    string
		answers []func(http.ResponseWriter)
		want    ChargeResult
		class   string // "", "transient" or "permanent"
		calls   int
	}{
		{"approved", []func(http.ResponseWriter){answer(200, `{"status":"approved","reference":"gw_1"}`)}, ChargeResult{Approved: true, Reference: "gw_1"}, "", 1},
		{"declined 402", []func(http.ResponseWriter){answer(402, `{"status":"declined","decline_code":"stolen_card"}`)}, ChargeResult{DeclineCode: "stolen_card"}, "", 1},
		{"declined 200", []func(http.ResponseWriter){answer(200, `{"status":"declined","decline_code":"do_not_honor"}`)}, ChargeResult{DeclineCode: "do_not_honor"}, "", 1},
		{"5xx then approved", []func(http.ResponseWriter){answer(500, `{}`), answer(200, `{"status":"approved","reference":"gw_2"}`)}, ChargeResult{Approved: true, Reference: "gw_2"}, "", 2},
		{"429 with Retry-After then approved", []func(http.ResponseWriter){answer(429, ``, "Retry-After", "0"), answer(200, `{"status":"approved","reference":"gw_3"}`)}, ChargeResult{Approved: true, Reference: "gw_3"}, "", 2},
		{"503 throughout", []func(http.ResponseWriter){answer(503, `down`)}, ChargeResult{}, "transient", 3},
		{"400", []func(http.ResponseWriter){answer(400, `{"error":"amount"}`)}, ChargeResult{}, "permanent", 1},
		{"422", []func(http.ResponseWriter){answer(422, `{"error":"key reused"}`)}, ChargeResult{}, "permanent", 1},
		{"malformed 200", []func(http.ResponseWriter){answer(200, `<html>`)}, ChargeResult{}, "permanent", 1},
		{"approved without reference", []func(http.ResponseWriter){answer(200, `{"status":"approved"}`)}, ChargeResult{}, "permanent", 1},
		{"approved with 402", []func(http.ResponseWriter){answer(402, `{"status":"approved","reference":"gw_x"}`)}, ChargeResult{}, "permanent", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &scripted{answers: c.answers}
			g := newClient(t, s, GatewayConfig{APIKey: "k"})
			got, err := g.Charge(context.Background(), chargeReq)
			wantOutcome(t, got, err, c.want, c.class)
			want(t, "calls", int(s.calls.Load()), c.calls)
		})
	}
}

func TestHTTPGatewayRequest(t *testing.T) {
	s := &scripted{answers: []func(http.ResponseWriter){answer(200, `{"status":"approved","reference":"gw_1"}`)}}
	g := newClient(t, s, GatewayConfig{APIKey: "secret"})
	if _, err := g.Charge(context.Background(), chargeReq); err != nil {
		t.Fatal(err)
	}
	r := s.last.Load()
	want(t, "method", r.Method, http.MethodPost)
	want(t, "path", r.URL.Path, "/base/v1/charges")
	want(t, "Idempotency-Key", r.Header.Get("Idempotency-Key"), chargeReq.IdempotencyKey)
	want(t, "Authorization", r.Header.Get("Authorization"), "Bearer secret")
	want(t, "Content-Type", r.Header.Get("Content-Type"), "application/json")
	want(t, "body", *s.body.Load(), `{"order_id":"o-1","amount":1234,"currency":"EUR","customer_id":"c-1"}`)

	// Without an API key no Authorization header is sent.
	g2 := newClient(t, s, GatewayConfig{})
	if _, err := g2.Charge(context.Background(), chargeReq); err != nil {
		t.Fatal(err)
	}
	if h := s.last.Load().Header.Get("Authorization"); h != "" {
		t.Fatalf("Authorization %q sent without a key", h)
	}
	if _, err := g2.Charge(context.Background(), ChargeRequest{OrderID: "o"}); !retry.IsPermanent(err) {
		t.Fatalf("charge without an idempotency key: %v", err)
	}
}

func TestHTTPGatewayTimeoutIsTransient(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	g := newClient(t, h, GatewayConfig{Timeout: 20 * time.Millisecond, Retry: retry.Policy{MaxAttempts: 2, Initial: time.Millisecond, Max: time.Millisecond}})
	_, err := g.Charge(context.Background(), chargeReq)
	if !retry.IsTransient(err) || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("err %v", err)
	}
	// The caller's own cancellation is not the gateway's fault.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Charge(ctx, chargeReq); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled charge: %v", err)
	}
	want(t, "breaker", g.Breaker().State(), breaker.StateClosed)
}

func TestHTTPGatewayBreakerStopsTheRetry(t *testing.T) {
	s := &scripted{answers: []func(http.ResponseWriter){answer(503, ``)}}
	g := newClient(t, s, GatewayConfig{
		Retry:   retry.Policy{MaxAttempts: 5, Initial: time.Millisecond, Max: time.Millisecond},
		Breaker: breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour},
	})
	_, err := g.Charge(context.Background(), chargeReq)
	if !errors.Is(err, breaker.ErrOpen) || !retry.IsTransient(err) {
		t.Fatalf("err %v, want a transient breaker.ErrOpen", err)
	}
	want(t, "calls before the breaker opened", int(s.calls.Load()), 2)
	if _, err := g.Charge(context.Background(), chargeReq); !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("second charge: %v", err)
	}
	want(t, "calls while open", int(s.calls.Load()), 2)
}

func TestGatewayConfigValidate(t *testing.T) {
	cases := map[string]struct {
		cfg  GatewayConfig
		want error
	}{
		"no url":        {GatewayConfig{}, ErrNoGatewayURL},
		"relative url":  {GatewayConfig{BaseURL: "payments.example.com"}, ErrInvalidGatewayURL},
		"ftp url":       {GatewayConfig{BaseURL: "ftp://payments.example.com"}, ErrInvalidGatewayURL},
		"query":         {GatewayConfig{BaseURL: "https://payments.example.com/?x=1"}, ErrInvalidGatewayURL},
		"neg timeout":   {GatewayConfig{BaseURL: "https://payments.example.com", Timeout: -1}, ErrInvalidTimeout},
		"bad retry":     {GatewayConfig{BaseURL: "https://payments.example.com", Retry: retry.Policy{MaxAttempts: -1}}, retry.ErrInvalidMaxAttempts},
		"bad breaker":   {GatewayConfig{BaseURL: "https://payments.example.com", Breaker: breaker.Config{FailureRatio: 2}}, breaker.ErrInvalidFailureRatio},
		"ok, defaults":  {GatewayConfig{BaseURL: "https://payments.example.com"}, nil},
		"ok, with path": {GatewayConfig{BaseURL: "http://127.0.0.1:9999/gw"}, nil},
	}
	for name, c := range cases {
		if err := c.cfg.Validate(); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

var refundReq = RefundRequest{IdempotencyKey: "//example.com/orders-api/ev-2/refund/p-1", OrderID: "o-1", ChargeReference: "gw_1", Amount: 1234, Currency: "EUR"}

func TestHTTPGatewayRefund(t *testing.T) {
	cases := []struct {
		name    string
		answers []func(http.ResponseWriter)
		want    RefundResult
		class   string // "", "transient" or "permanent"
		calls   int
	}{
		{"refunded", []func(http.ResponseWriter){answer(200, `{"status":"refunded","reference":"rf_1"}`)}, RefundResult{Reference: "rf_1"}, "", 1},
		{"5xx then refunded", []func(http.ResponseWriter){answer(502, ``), answer(200, `{"status":"refunded","reference":"rf_2"}`)}, RefundResult{Reference: "rf_2"}, "", 2},
		{"503 throughout", []func(http.ResponseWriter){answer(503, `down`)}, RefundResult{}, "transient", 3},
		{"unknown charge", []func(http.ResponseWriter){answer(404, `{"error":"no charge"}`)}, RefundResult{}, "permanent", 1},
		{"more than the charge", []func(http.ResponseWriter){answer(400, `{"error":"exceeds"}`)}, RefundResult{}, "permanent", 1},
		{"402 is not a refund answer", []func(http.ResponseWriter){answer(402, `{"status":"declined"}`)}, RefundResult{}, "permanent", 1},
		{"malformed 200", []func(http.ResponseWriter){answer(200, `<html>`)}, RefundResult{}, "permanent", 1},
		{"refunded without reference", []func(http.ResponseWriter){answer(200, `{"status":"refunded"}`)}, RefundResult{}, "permanent", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &scripted{answers: c.answers}
			g := newClient(t, s, GatewayConfig{APIKey: "k"})
			got, err := g.Refund(context.Background(), refundReq)
			wantOutcome(t, got, err, c.want, c.class)
			want(t, "calls", int(s.calls.Load()), c.calls)
		})
	}
}

func TestHTTPGatewayRefundRequest(t *testing.T) {
	s := &scripted{answers: []func(http.ResponseWriter){answer(200, `{"status":"refunded","reference":"rf_1"}`)}}
	g := newClient(t, s, GatewayConfig{APIKey: "secret"})
	if _, err := g.Refund(context.Background(), refundReq); err != nil {
		t.Fatal(err)
	}
	r := s.last.Load()
	want(t, "method", r.Method, http.MethodPost)
	want(t, "path", r.URL.Path, "/base/v1/refunds")
	want(t, "Idempotency-Key", r.Header.Get("Idempotency-Key"), refundReq.IdempotencyKey)
	want(t, "Authorization", r.Header.Get("Authorization"), "Bearer secret")
	want(t, "body", *s.body.Load(), `{"charge_reference":"gw_1","amount":1234,"currency":"EUR","order_id":"o-1"}`)
	if _, err := g.Refund(context.Background(), RefundRequest{OrderID: "o"}); !retry.IsPermanent(err) {
		t.Fatalf("refund without an idempotency key: %v", err)
	}
}

// TestHTTPGatewayRefundSharesTheBreaker: charges and refunds go through one
// breaker, so an outage seen by one stops the other.
func TestHTTPGatewayRefundSharesTheBreaker(t *testing.T) {
	s := &scripted{answers: []func(http.ResponseWriter){answer(503, ``)}}
	g := newClient(t, s, GatewayConfig{
		Retry:   retry.Policy{MaxAttempts: 2, Initial: time.Millisecond, Max: time.Millisecond},
		Breaker: breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour},
	})
	if _, err := g.Charge(context.Background(), chargeReq); !retry.IsTransient(err) {
		t.Fatalf("charge: %v", err)
	}
	if _, err := g.Refund(context.Background(), refundReq); !errors.Is(err, breaker.ErrOpen) || !retry.IsTransient(err) {
		t.Fatalf("refund: %v, want a transient breaker.ErrOpen", err)
	}
	want(t, "calls", int(s.calls.Load()), 2)
}

// wantOutcome checks a gateway call's result: got == want and no error
// when class is "", else an error of that retry class.
func wantOutcome[R comparable](t *testing.T, got R, err error, want R, class string) {
	t.Helper()
	switch class {
	case "":
		if err != nil || got != want {
			t.Fatalf("got %+v, %v; want %+v", got, err, want)
		}
	case "transient":
		if !retry.IsTransient(err) {
			t.Fatalf("err %v, want transient", err)
		}
	case "permanent":
		if !retry.IsPermanent(err) {
			t.Fatalf("err %v, want permanent", err)
		}
	default:
		t.Fatalf("unknown class %q", class)
	}
}
