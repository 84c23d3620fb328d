package fakegateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/platform/shared/domain/fakegateway"
)

type refundAnswer struct {
	status int
	body   fakegateway.RefundResponse
	raw    string
}

func refund(t *testing.T, s *fakegateway.Server, key string, req fakegateway.RefundRequest) refundAnswer {
	t.Helper()
	a, err := refundCtx(context.Background(), s, key, req)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func refundCtx(ctx context.Context, s *fakegateway.Server, key string, req fakegateway.RefundRequest) (refundAnswer, error) {
	b, _ := json.Marshal(req)
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+fakegateway.RefundsPath, bytes.NewReader(b))
	if err != nil {
		return refundAnswer{}, err
	}
	r.Header.Set("Content-Type", "application/json")
	if key != "" {
		r.Header.Set(fakegateway.IdempotencyKeyHeader, key)
	}
	resp, err := s.Client().Do(r)
	if err != nil {
		return refundAnswer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := refundAnswer{status: resp.StatusCode, raw: string(raw)}
	json.Unmarshal(raw, &a.body)
	return a, nil
}

// charged makes an approved charge of 1250 EUR for order and customer and
// returns the refund of all of it.
func charged(t *testing.T, s *fakegateway.Server, order, customer string) fakegateway.RefundRequest {
	t.Helper()
	a := charge(t, s, "charge-"+order, req(order, customer))
	if a.status != http.StatusOK || a.body.Status != fakegateway.StatusApproved {
		t.Fatalf("charge: %d %s", a.status, a.raw)
	}
	return fakegateway.RefundRequest{ChargeReference: a.body.Reference, Amount: 1250, Currency: "EUR", OrderID: order}
}

func TestRefundIsIdempotentPerKey(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{})
	rr := charged(t, s, "o1", "c1")
	a := refund(t, s, "r1", rr)
	if a.status != http.StatusOK || a.body.Status != fakegateway.StatusRefunded || !strings.HasPrefix(a.body.Reference, "rf_") {
		t.Fatalf("refund: %d %s", a.status, a.raw)
	}
	// The charge is fully refunded now; the same key still gets the same
	// answer, without refunding again.
	if b := refund(t, s, "r1", rr); b.status != a.status || b.raw != a.raw {
		t.Fatalf("replay %d %s, want %d %s", b.status, b.raw, a.status, a.raw)
	}
	if s.RefundsFor("r1") != 1 || s.RefundedFor(rr.ChargeReference) != 1250 {
		t.Fatalf("refunds for r1 %d, refunded %d", s.RefundsFor("r1"), s.RefundedFor(rr.ChargeReference))
	}
	st := s.Stats()
	if st.RefundRequests != 2 || st.Refunds != 1 || st.RefundsReplayed != 1 || st.Requests != 1 || st.Charges != 1 || st.Keys["r1"].Requests != 2 {
		t.Fatalf("stats %+v", st)
	}
	rf := s.Refunds()
	if len(rf) != 1 || rf[0].Key != "r1" || rf[0].RefundRequest != rr || rf[0].Reference != a.body.Reference || rf[0].At.IsZero() {
		t.Fatalf("refunds %+v", rf)
	}
	// Another key for the same charge: nothing is left to refund.
	if b := refund(t, s, "r2", rr); b.status != http.StatusBadRequest || !strings.Contains(b.raw, "exceeds") {
		t.Fatalf("second refund of the charge: %d %s", b.status, b.raw)
	}
	if s.Stats().Refunds != 1 {
		t.Fatalf("refunded twice: %+v", s.Stats())
	}
}

func TestRefundRefusals(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{})
	rr := charged(t, s, "o1", "c1")
	partial := rr
	partial.Amount = 1000
	if a := refund(t, s, "part", partial); a.status != http.StatusOK {
		t.Fatalf("partial refund: %d %s", a.status, a.raw)
	}
	with := func(f func(r *fakegateway.RefundRequest)) fakegateway.RefundRequest { r := rr; f(&r); return r }
	cases := []struct {
		name   string
		key    string
		req    fakegateway.RefundRequest
		status int
	}{
		{"more than is left", "k1", with(func(r *fakegateway.RefundRequest) { r.Amount = 251 }), 400},
		{"more than the charge", "k2", with(func(r *fakegateway.RefundRequest) { r.Amount = 5000 }), 400},
		{"unknown charge", "k3", with(func(r *fakegateway.RefundRequest) { r.ChargeReference = "gw_nope" }), 404},
		{"another currency", "k5", with(func(r *fakegateway.RefundRequest) { r.Amount = 1; r.Currency = "USD" }), 400},
		{"another order", "k6", with(func(r *fakegateway.RefundRequest) { r.Amount = 1; r.OrderID = "o9" }), 400},
		{"zero amount", "k7", with(func(r *fakegateway.RefundRequest) { r.Amount = 0 }), 400},
		{"no idempotency key", "", with(func(r *fakegateway.RefundRequest) { r.Amount = 1 }), 400},
		{"key reused with another body", "part", with(func(r *fakegateway.RefundRequest) { r.Amount = 1 }), 422},
		{"what is left", "k8", with(func(r *fakegateway.RefundRequest) { r.Amount = 250 }), 200},
	}
	for _, c := range cases {
		if a := refund(t, s, c.key, c.req); a.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, a.status, a.raw, c.status)
		}
	}
	st := s.Stats()
	if st.Refunds != 2 || st.Rejected != len(cases)-1 || s.RefundedFor(rr.ChargeReference) != 1250 {
		t.Fatalf("stats %+v, refunded %d", st, s.RefundedFor(rr.ChargeReference))
	}
}

func TestRefundBehaviors(t *testing.T) {
	t.Run("fail then refund, by order rule", func(t *testing.T) {
		s := fakegateway.NewServer(t, fakegateway.Config{})
		rr := charged(t, s, "o", "c")
		must(t, s.SetOrder("o", fakegateway.Behavior{Mode: fakegateway.Fail, Status: 503, Times: 1}))
		if a := refund(t, s, "r", rr); a.status != 503 {
			t.Fatalf("fail: %d %s", a.status, a.raw)
		}
		if s.RefundsFor("r") != 0 {
			t.Fatal("a failure refunded")
		}
		if a := refund(t, s, "r", rr); a.status != 200 {
			t.Fatalf("after the failure: %d %s", a.status, a.raw)
		}
		if st := s.Stats(); st.Failed != 1 || st.Refunds != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("hang, by the charge's customer", func(t *testing.T) {
		s := fakegateway.NewServer(t, fakegateway.Config{})
		rr := charged(t, s, "o", "slow")
		must(t, s.SetCustomer("slow", fakegateway.Behavior{Mode: fakegateway.Hang}))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := refundCtx(ctx, s, "r", rr); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
		waitStat(t, s, func(st fakegateway.Stats) bool { return st.TimedOut == 1 })
		if s.RefundsFor("r") != 0 {
			t.Fatal("a hang refunded")
		}
	})
	t.Run("answer lost after the refund", func(t *testing.T) {
		s := fakegateway.NewServer(t, fakegateway.Config{})
		rr := charged(t, s, "o", "c")
		must(t, s.SetOrder("o", fakegateway.Behavior{Mode: fakegateway.ApproveThenHang, Times: 1}))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := refundCtx(ctx, s, "r", rr); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
		a := refund(t, s, "r", rr)
		if a.status != 200 || a.body.Reference != s.Refunds()[0].Reference {
			t.Fatalf("retry: %d %s", a.status, a.raw)
		}
		if s.RefundsFor("r") != 1 || s.Stats().RefundsReplayed != 1 {
			t.Fatalf("stats %+v", s.Stats())
		}
	})
	t.Run("a decline rule does not decline refunds", func(t *testing.T) {
		s := fakegateway.NewServer(t, fakegateway.Config{})
		rr := charged(t, s, "o", "c")
		must(t, s.SetDefault(fakegateway.Behavior{Mode: fakegateway.Decline}))
		if a := refund(t, s, "r", rr); a.status != 200 || a.body.Status != fakegateway.StatusRefunded {
			t.Fatalf("refund: %d %s", a.status, a.raw)
		}
	})
}

func TestConcurrentSameKeyRefundsOnce(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{})
	rr := charged(t, s, "o", "c")
	release := s.Hold()
	const n = 10
	answers := make([]refundAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a, err := refundCtx(context.Background(), s, "same", rr)
			if err != nil {
				t.Error(err)
			}
			answers[i] = a
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, s.Wait(ctx, func(st fakegateway.Stats) bool { return st.RefundRequests == n }))
	release()
	wg.Wait()
	for _, a := range answers {
		if a.raw != answers[0].raw || a.status != 200 {
			t.Fatalf("answers differ: %d %s vs %s", a.status, a.raw, answers[0].raw)
		}
	}
	if s.RefundsFor("same") != 1 || s.Stats().RefundsReplayed != n-1 {
		t.Fatalf("stats %+v", s.Stats())
	}
}

func TestRefundControlEndpoints(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{APIKey: "k"})
	get := func(path string) string {
		t.Helper()
		resp, err := s.Client().Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if b := get(fakegateway.RefundsList); strings.TrimSpace(b) != "[]" {
		t.Fatalf("no refunds yet: %s", b)
	}
	// Without the API key the refund is refused.
	if a := refund(t, s, "r", fakegateway.RefundRequest{ChargeReference: "gw_x", Amount: 1, Currency: "EUR", OrderID: "o"}); a.status != 401 {
		t.Fatalf("no API key: %d %s", a.status, a.raw)
	}
	s2 := fakegateway.NewServer(t, fakegateway.Config{})
	rr := charged(t, s2, "o", "c")
	refund(t, s2, "r", rr)
	resp, err := s2.Client().Get(s2.URL + fakegateway.RefundsList)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var refunds []fakegateway.Refund
	if err := json.NewDecoder(resp.Body).Decode(&refunds); err != nil || len(refunds) != 1 || refunds[0].RefundRequest != rr {
		t.Fatalf("refunds %+v %v", refunds, err)
	}
	resp2, err := s2.Client().Get(s2.URL + fakegateway.StatsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var st fakegateway.Stats
	if err := json.NewDecoder(resp2.Body).Decode(&st); err != nil || st.Refunds != 1 || st.RefundRequests != 1 || st.Keys["r"].Refunds != 1 {
		t.Fatalf("stats %+v %v", st, err)
	}
	resp3, err := s2.Client().Get(s2.URL + fakegateway.RefundsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp3.Body.Close()
	if resp3.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET %s: %d", fakegateway.RefundsPath, resp3.StatusCode)
	}
	s2.Reset()
	if len(s2.Refunds()) != 0 || s2.Stats().Refunds != 0 || s2.RefundedFor(rr.ChargeReference) != 0 {
		t.Fatal("reset kept refunds")
	}
}
