package fakegateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"example.com/platform/shared/domain/fakegateway"
)

type answer struct {
	status int
	body   fakegateway.ChargeResponse
	raw    string
}

func charge(t *testing.T, s *fakegateway.Server, key string, req fakegateway.ChargeRequest) answer {
	t.Helper()
	a, err := chargeCtx(context.Background(), s, key, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func chargeCtx(ctx context.Context, s *fakegateway.Server, key string, req fakegateway.ChargeRequest, hdr http.Header) (answer, error) {
	b, _ := json.Marshal(req)
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+fakegateway.ChargesPath, bytes.NewReader(b))
	if err != nil {
		return answer{}, err
	}
	r.Header.Set("Content-Type", "application/json")
	if key != "" {
		r.Header.Set(fakegateway.IdempotencyKeyHeader, key)
	}
	for k, v := range hdr {
		r.Header[k] = v
	}
	resp, err := s.Client().Do(r)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(raw)}
	json.Unmarshal(raw, &a.body)
	return a, nil
}

func req(order, customer string) fakegateway.ChargeRequest {
	return fakegateway.ChargeRequest{OrderID: order, Amount: 1250, Currency: "EUR", CustomerID: customer}
}

func TestApproveIsIdempotentPerKey(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{})
	a := charge(t, s, "k1", req("o1", "c1"))
	if a.status != http.StatusOK || a.body.Status != fakegateway.StatusApproved || len(a.body.Reference) < 4 || a.body.Reference[:3] != "gw_" {
		t.Fatalf("first answer %d %s", a.status, a.raw)
	}
	// Even after the behaviour changes, the same key gets the same answer.
	if err := s.SetDefault(fakegateway.Behavior{Mode: fakegateway.Decline}); err != nil {
		t.Fatal(err)
	}
	b := charge(t, s, "k1", req("o1", "c1"))
	if b.status != a.status || b.raw != a.raw {
		t.Fatalf("replay %d %s, want %d %s", b.status, b.raw, a.status, a.raw)
	}
	if got := s.ChargesFor("k1"); got != 1 {
		t.Fatalf("charges for k1: %d", got)
	}
	if got := s.RequestsFor("k1"); got != 2 {
		t.Fatalf("requests for k1: %d", got)
	}
	st := s.Stats()
	if st.Charges != 1 || st.Approved != 1 || st.Replayed != 1 || st.Requests != 2 {
		t.Fatalf("stats %+v", st)
	}
	// A new key is a new charge, under the new behaviour.
	if c := charge(t, s, "k2", req("o2", "c1")); c.status != http.StatusPaymentRequired || c.body.DeclineCode != fakegateway.DefaultDeclineCode {
		t.Fatalf("k2: %d %s", c.status, c.raw)
	}
	ch := s.Charges()
	if len(ch) != 2 || ch[0].Key != "k1" || ch[0].OrderID != "o1" || ch[1].Status != fakegateway.StatusDeclined {
		t.Fatalf("charges %+v", ch)
	}
}

func TestSameKeyDifferentBodyIs422(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{})
	charge(t, s, "k", req("o1", "c1"))
	r := req("o1", "c1")
	r.Amount = 99
	if a := charge(t, s, "k", r); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d %s", a.status, a.raw)
	}
	if s.ChargesFor("k") != 1 {
		t.Fatal("charged again")
	}
}

func TestRulePrecedenceAndTimes(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{})
	must(t, s.SetDefault(fakegateway.Behavior{Mode: fakegateway.Decline, DeclineCode: "do_not_honor", DeclineStatus: 200}))
	must(t, s.SetCustomer("vip", fakegateway.Behavior{Mode: fakegateway.Approve}))
	must(t, s.SetOrder("o-fail", fakegateway.Behavior{Mode: fakegateway.Fail, Status: 502, Times: 2}))

	if a := charge(t, s, "a", req("o-a", "someone")); a.status != 200 || a.body.Status != "declined" || a.body.DeclineCode != "do_not_honor" {
		t.Fatalf("default: %d %s", a.status, a.raw)
	}
	if a := charge(t, s, "b", req("o-b", "vip")); a.body.Status != "approved" {
		t.Fatalf("customer: %d %s", a.status, a.raw)
	}
	for i := 0; i < 2; i++ {
		if a := charge(t, s, "c", req("o-fail", "vip")); a.status != 502 {
			t.Fatalf("order rule use %d: %d %s", i, a.status, a.raw)
		}
	}
	// The order rule is used up: the customer rule applies.
	if a := charge(t, s, "c", req("o-fail", "vip")); a.status != 200 || a.body.Status != "approved" {
		t.Fatalf("after times: %d %s", a.status, a.raw)
	}
	st := s.Stats()
	if st.Failed != 2 || st.Keys["c"].Requests != 3 || st.Keys["c"].Charges != 1 {
		t.Fatalf("stats %+v", st)
	}
	must(t, s.Clear("customer", "vip"))
	if a := charge(t, s, "d", req("o-d", "vip")); a.body.Status != "declined" {
		t.Fatalf("after clear: %s", a.raw)
	}
}

func TestHangUntilCallerGivesUp(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{})
	must(t, s.SetCustomer("c", fakegateway.Behavior{Mode: fakegateway.Hang}))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := chargeCtx(ctx, s, "k", req("o", "c"), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", err)
	}
	waitStat(t, s, func(st fakegateway.Stats) bool { return st.TimedOut == 1 })
	if s.ChargesFor("k") != 0 {
		t.Fatal("a hang charged")
	}
}

func TestApproveThenHangChargesOnce(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{})
	must(t, s.SetOrder("o", fakegateway.Behavior{Mode: fakegateway.ApproveThenHang, Times: 1}))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := chargeCtx(ctx, s, "k", req("o", "c"), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	// The retry with the same key learns the outcome without a new charge.
	a := charge(t, s, "k", req("o", "c"))
	if a.status != 200 || a.body.Status != "approved" {
		t.Fatalf("retry: %d %s", a.status, a.raw)
	}
	if s.ChargesFor("k") != 1 || s.Stats().Replayed != 1 {
		t.Fatalf("stats %+v", s.Stats())
	}
}

func TestSlowAnswersAfterDelay(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{})
	must(t, s.SetDefault(fakegateway.Behavior{Mode: fakegateway.Approve, Delay: 30 * time.Millisecond}))
	start := time.Now()
	if a := charge(t, s, "k", req("o", "c")); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("answered after %v, want at least the delay", d)
	}
	// A caller with a shorter deadline times out and nothing is charged.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := chargeCtx(ctx, s, "k2", req("o2", "c"), nil); err == nil {
		t.Fatal("slow answer arrived before the caller's deadline")
	}
	waitStat(t, s, func(st fakegateway.Stats) bool { return st.TimedOut == 1 })
	if s.ChargesFor("k2") != 0 {
		t.Fatal("timed-out slow request charged")
	}
}

func TestConcurrentSameKeyChargesOnce(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{})
	release := s.Hold()
	const n = 20
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := chargeCtx(context.Background(), s, "same", req("o", "c"), nil)
			if err != nil {
				t.Error(err)
			}
			answers[i] = a
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, s.WaitRequests(ctx, n))
	release()
	wg.Wait()
	for _, a := range answers {
		if a.raw != answers[0].raw || a.status != 200 {
			t.Fatalf("answers differ: %d %s vs %s", a.status, a.raw, answers[0].raw)
		}
	}
	if s.ChargesFor("same") != 1 || s.Stats().Replayed != n-1 {
		t.Fatalf("stats %+v", s.Stats())
	}
}

func TestValidationAndAPIKey(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{APIKey: "sekret"})
	auth := http.Header{"Authorization": {"Bearer sekret"}}
	cases := []struct {
		name   string
		key    string
		req    fakegateway.ChargeRequest
		hdr    http.Header
		status int
	}{
		{"no api key", "k", req("o", "c"), nil, 401},
		{"wrong api key", "k", req("o", "c"), http.Header{"Authorization": {"Bearer nope"}}, 401},
		{"no idempotency key", "", req("o", "c"), auth, 400},
		{"zero amount", "k", fakegateway.ChargeRequest{OrderID: "o", CustomerID: "c", Currency: "EUR"}, auth, 400},
		{"bad currency", "k", fakegateway.ChargeRequest{OrderID: "o", CustomerID: "c", Currency: "eu", Amount: 1}, auth, 400},
		{"ok", "k", req("o", "c"), auth, 200},
	}
	for _, c := range cases {
		a, err := chargeCtx(context.Background(), s, c.key, c.req, c.hdr)
		if err != nil {
			t.Fatal(err)
		}
		if a.status != c.status {
			t.Errorf("%s: status %d %s, want %d", c.name, a.status, a.raw, c.status)
		}
	}
	if st := s.Stats(); st.Rejected != 5 || st.Charges != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestControlEndpoints(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{})
	do := func(method, path, body string) (int, string) {
		t.Helper()
		r, _ := http.NewRequest(method, s.URL+path, bytes.NewBufferString(body))
		resp, err := s.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, b := do(http.MethodPut, fakegateway.BehaviorPath, `{"scope":"customer","id":"c9","mode":"fail","status":429,"times":1}`); st != 204 {
		t.Fatalf("put: %d %s", st, b)
	}
	if st, _ := do(http.MethodPut, fakegateway.BehaviorPath, `{"scope":"customer","id":"c9","mode":"explode"}`); st != 400 {
		t.Fatalf("invalid mode accepted: %d", st)
	}
	if st, _ := do(http.MethodPut, fakegateway.BehaviorPath, `{"scope":"order","mode":"decline"}`); st != 400 {
		t.Fatalf("order rule without id accepted: %d", st)
	}
	if a := charge(t, s, "k", req("o", "c9")); a.status != 429 {
		t.Fatalf("rule not applied: %d %s", a.status, a.raw)
	}
	charge(t, s, "k", req("o", "c9"))
	st, body := do(http.MethodGet, fakegateway.StatsPath, "")
	var stats fakegateway.Stats
	if err := json.Unmarshal([]byte(body), &stats); err != nil || st != 200 {
		t.Fatalf("stats: %d %s %v", st, body, err)
	}
	if stats.Requests != 2 || stats.Failed != 1 || stats.Keys["k"].Charges != 1 {
		t.Fatalf("stats %+v", stats)
	}
	_, body = do(http.MethodGet, fakegateway.ChargesList, "")
	var charges []fakegateway.Charge
	if err := json.Unmarshal([]byte(body), &charges); err != nil || len(charges) != 1 || charges[0].CustomerID != "c9" {
		t.Fatalf("charges %s %v", body, err)
	}
	if st, _ := do(http.MethodPut, fakegateway.BehaviorPath, `{"scope":"default","mode":"decline","delay":"1ms"}`); st != 204 {
		t.Fatal("default rule")
	}
	if a := charge(t, s, "k3", req("o3", "x")); a.body.Status != "declined" {
		t.Fatalf("default rule not applied: %s", a.raw)
	}
	if st, _ := do(http.MethodDelete, fakegateway.BehaviorPath+"?scope=default", ""); st != 204 {
		t.Fatal("delete")
	}
	if a := charge(t, s, "k4", req("o4", "x")); a.body.Status != "approved" {
		t.Fatalf("after delete: %s", a.raw)
	}
	if st, _ := do(http.MethodGet, fakegateway.HealthPath, ""); st != 200 {
		t.Fatal("healthz")
	}
	if st, _ := do(http.MethodGet, "/nope", ""); st != 404 {
		t.Fatal("unknown path")
	}
	if st, _ := do(http.MethodPost, fakegateway.ResetPath, ""); st != 204 {
		t.Fatal("reset")
	}
	if st := s.Stats(); st.Requests != 0 || len(s.Charges()) != 0 {
		t.Fatalf("after reset %+v", st)
	}
}

func TestBehaviorJSONRoundTrip(t *testing.T) {
	in := fakegateway.BehaviorRule{Scope: "order", ID: "o1", Behavior: fakegateway.Behavior{Mode: fakegateway.Approve, Delay: 1500 * time.Millisecond, Times: 3}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out fakegateway.BehaviorRule
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip %s: %+v", b, out)
	}
	if !bytes.Contains(b, []byte(`"delay":"1.5s"`)) {
		t.Fatalf("delay not a duration string: %s", b)
	}
}

func TestCloseReleasesHangingRequests(t *testing.T) {
	s := fakegateway.NewServer(t, fakegateway.Config{Default: fakegateway.Behavior{Mode: fakegateway.Hang}})
	done := make(chan answer, 1)
	go func() {
		a, err := chargeCtx(context.Background(), s, "k", req("o", "c"), nil)
		if err != nil {
			t.Error(err)
		}
		done <- a
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, s.WaitRequests(ctx, 1))
	s.Close()
	if a := <-done; a.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d %s", a.status, a.raw)
	}
}

func waitStat(t *testing.T, s *fakegateway.Server, ok func(fakegateway.Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, s.Wait(ctx, ok))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
