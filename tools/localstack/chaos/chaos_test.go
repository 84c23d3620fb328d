package chaos_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"example.com/platform/tools/localstack/chaos"
)

// TestShortChaosRunHoldsEveryInvariant runs the chaos run with 200 orders:
// every fault kind must fire at least once and the four invariants must
// hold.
func TestShortChaosRunHoldsEveryInvariant(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole local stack and runs 200 orders under faults (about 2 minutes)")
	}
	var logs bytes.Buffer
	rep, err := chaos.Run(context.Background(), chaos.Config{Orders: 200, Seed: 42, Timeout: 8 * time.Minute, Log: &logs, Progress: testWriter{t}})
	if err != nil {
		t.Fatalf("chaos run: %v\n%s", err, tail(logs.String(), 200))
	}
	var out bytes.Buffer
	rep.WriteTable(&out)
	t.Log(out.String())
	if !rep.OK() {
		t.Errorf("invariants violated: %s\n%s", rep.Line(), strings.Join(rep.Violations, "\n"))
	}
	for _, k := range chaos.Kinds {
		if rep.Faults[k] == 0 {
			t.Errorf("fault kind %s never fired", k)
		}
	}
	kills := 0
	for _, a := range rep.Plan.Actions {
		if a.Kind == chaos.FaultSigKill {
			kills++
		}
	}
	if kills < 6 || rep.Faults[chaos.FaultSigKill] != kills {
		t.Errorf("SIGKILLed %d processes, the plan has %d, want every function (at least 6)", rep.Faults[chaos.FaultSigKill], kills)
	}
	afterCommit := 0
	for p, m := range rep.PublishFaults {
		if p != "relay" {
			afterCommit += m[chaos.FaultPublishPause] + m[chaos.FaultPublishFail]
		}
	}
	if afterCommit == 0 {
		t.Errorf("no after-commit publish paused or failed: %v", rep.PublishFaults)
	}
	if r := rep.PublishFaults["relay"]; r[chaos.FaultPublishPause]+r[chaos.FaultPublishFail] == 0 {
		t.Errorf("no relay publish paused or failed: %v", rep.PublishFaults)
	}
	if rep.IdleTxTimeout != chaos.IdleTxTimeout {
		t.Errorf("idle_in_transaction_session_timeout = %q, want %q", rep.IdleTxTimeout, chaos.IdleTxTimeout)
	}
	if rep.Accepted != 200 {
		t.Errorf("accepted %d orders, want 200", rep.Accepted)
	}
	line := rep.Line()
	for _, f := range []string{"orders=", "faults=", "lost=0", "double_effects=0", "order_violations=0", "stuck=0", "dead_lettered=", "seconds="} {
		if !strings.Contains(line, f) {
			t.Errorf("summary line %q lacks %s", line, f)
		}
	}
	if os.Getenv("CHAOS_TEST_LOGS") != "" {
		t.Log(logs.String())
	}
}

func TestRunRejectsABadConfig(t *testing.T) {
	if _, err := chaos.Run(context.Background(), chaos.Config{Orders: -1}); !errors.Is(err, chaos.ErrBadConfig) {
		t.Errorf("Run(Orders: -1) = %v, want ErrBadConfig", err)
	}
}

func TestPlanIsAFunctionOfTheSeed(t *testing.T) {
	fns := []string{"analytics", "deadletter", "ordersapi", "payment", "relay", "shipment"}
	a, b := chaos.NewPlan(7, 10000, fns), chaos.NewPlan(7, 10000, fns)
	if len(a.Actions) != len(b.Actions) {
		t.Fatalf("plans differ in length")
	}
	for i := range a.Actions {
		if a.Actions[i] != b.Actions[i] {
			t.Errorf("action %d: %v vs %v", i, a.Actions[i], b.Actions[i])
		}
	}
	c := chaos.NewPlan(8, 10000, fns)
	same := true
	for i := range a.Actions {
		same = same && a.Actions[i] == c.Actions[i]
	}
	if same {
		t.Errorf("seeds 7 and 8 give the same plan")
	}
	kills := map[string]bool{}
	for _, x := range a.Actions {
		if x.At < 500 || x.At > 7500 {
			t.Errorf("action %v outside 5%%..75%% of the orders", x)
		}
		if x.Kind == chaos.FaultSigKill {
			kills[x.Target] = true
		}
	}
	if len(kills) != len(fns) {
		t.Errorf("plan kills %v, want every function %v", kills, fns)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
