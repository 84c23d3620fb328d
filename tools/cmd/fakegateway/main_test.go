package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"example.com/platform/shared/domain/fakegateway"
)

// start sets the program up with args and env and serves it until the
// test ends.
func start(t *testing.T, args []string, env map[string]string) (*program, string, func() error) {
	t.Helper()
	var logs bytes.Buffer
	p, err := setup(append([]string{"-addr", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, &logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.serve(ctx) }()
	var once bool
	stop := func() error {
		if once {
			return nil
		}
		once = true
		cancel()
		return <-done
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return p, "http://" + p.l.Addr().String(), stop
}

func post(t *testing.T, url, key, apiKey string) (int, fakegateway.ChargeResponse) {
	t.Helper()
	body := `{"order_id":"o","amount":5,"currency":"EUR","customer_id":"c"}`
	req, _ := http.NewRequest(http.MethodPost, url+fakegateway.ChargesPath, strings.NewReader(body))
	req.Header.Set(fakegateway.IdempotencyKeyHeader, key)
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Error(err)
		return 0, fakegateway.ChargeResponse{}
	}
	defer resp.Body.Close()
	var out fakegateway.ChargeResponse
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestServesTheFlagsBehaviour(t *testing.T) {
	_, url, _ := start(t, []string{"-mode", "decline", "-decline-code", "expired_card"}, nil)
	status, out := post(t, url, "k1", "")
	if status != http.StatusPaymentRequired || out.Status != "declined" || out.DeclineCode != "expired_card" {
		t.Fatalf("%d %+v", status, out)
	}
}

func TestAPIKeyFromEnvironment(t *testing.T) {
	_, url, _ := start(t, nil, map[string]string{"PAYMENT_GATEWAY_API_KEY": "s3"})
	if status, _ := post(t, url, "k", ""); status != http.StatusUnauthorized {
		t.Fatalf("without key: %d", status)
	}
	if status, out := post(t, url, "k", "s3"); status != http.StatusOK || out.Status != "approved" {
		t.Fatalf("with key: %d %+v", status, out)
	}
}

func TestPortFromEnvironment(t *testing.T) {
	var logs bytes.Buffer
	p, err := setup(nil, func(k string) string { return map[string]string{"PORT": "0"}[k] }, &logs)
	if err != nil {
		t.Fatal(err)
	}
	defer p.l.Close()
	if !strings.Contains(logs.String(), "listening") {
		t.Fatalf("logs %q", logs.String())
	}
}

func TestShutdownReleasesHangingRequests(t *testing.T) {
	p, url, stop := start(t, []string{"-mode", "hang"}, nil)
	answered := make(chan int, 1)
	go func() { s, _ := post(t, url, "k", ""); answered <- s }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.g.WaitRequests(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if s := <-answered; s != http.StatusServiceUnavailable {
		t.Fatalf("hanging request answered %d", s)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-mode", "explode"}, {"-status", "200", "-mode", "fail"}, {"extra"}, {"-delay", "soon"}} {
		var logs bytes.Buffer
		if p, err := setup(append([]string{"-addr", "127.0.0.1:0"}, args...), func(string) string { return "" }, &logs); err == nil {
			p.l.Close()
			t.Errorf("%v accepted", args)
		}
	}
}
