package bench

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"example.com/platform/shared/outbox/outboxbench"
)

func TestReadProcSelf(t *testing.T) {
	// Burn a little CPU so the counters are not all zero.
	deadline := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	p, err := readProc(0)
	if err != nil {
		t.Fatal(err)
	}
	if p.ppid <= 0 || p.CPU() <= 0 {
		t.Fatalf("readProc(self) = %+v", p)
	}
}

func TestQuantileIsNearestRank(t *testing.T) {
	p := &Phase{}
	for i := 1; i <= 100; i++ {
		p.Latencies = append(p.Latencies, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := p.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if (&Phase{}).Quantile(0.5) != 0 {
		t.Error("quantile of no latencies is not 0")
	}
}

func TestWriteEndsWithTheBenchLine(t *testing.T) {
	r := &Results{Quick: true, Relay: []outboxbench.Result{{Relay: 50, Client: 100}}, Err: errors.New("boom")}
	r.addIdem(1, 100, 80, 400)
	var b bytes.Buffer
	r.Write(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	last := lines[len(lines)-1]
	for _, kv := range []string{"bench: ", "relay_vs_ceiling=0.50", "tx_vs_raw_c1=0.80", "dup_vs_first_c1=5.00", "quick=1", "ok=0"} {
		if !strings.Contains(last, kv) {
			t.Errorf("last line %q lacks %q", last, kv)
		}
	}
	if !strings.HasPrefix(last, "bench: ") {
		t.Errorf("last line %q does not start with bench: ", last)
	}
}
