package dispatch_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"example.com/platform/tools/localstack/dispatch"
)

func TestFaultHook(t *testing.T) {
	e := newEnv(t)
	// The endpoint holds each push 100 ms so concurrent pushes overlap.
	ep := newEndpoint(t, func(push, int) int { time.Sleep(100 * time.Millisecond); return http.StatusOK })
	s := sub("faults", ep.srv.URL)
	e.provision(t, s)
	var mu sync.Mutex
	plan := map[string]dispatch.Fault{}
	var seen []dispatch.Push
	d := e.start(t, dispatch.Config{BackoffScale: 0.001, Fault: func(p dispatch.Push) dispatch.Fault {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, p)
		f := plan[string(p.Attributes["what"])]
		if f.Fail && p.Attempt > 1 {
			return dispatch.Fault{}
		}
		return f
	}}, s)
	plan["fail"] = dispatch.Fault{Fail: true}
	plan["poison"] = dispatch.Fault{Poison: true}
	plan["dup"] = dispatch.Fault{Duplicate: true}
	plan["both"] = dispatch.Fault{Duplicate: true, Concurrent: true}
	ids := map[string]string{}
	for _, what := range []string{"fail", "poison", "dup", "both", "none"} {
		ids[what] = e.publish(t, s.Topic, "body-"+what, map[string]string{"what": what}, "")
	}
	waitQuiet(t, d)

	if got := ep.of(ids["fail"]); len(got) != 1 || got[0].Attempt != 2 {
		t.Errorf("failed first attempt: pushes %+v, want one push, attempt 2", got)
	}
	if got := ep.of(ids["poison"]); len(got) != 1 || got[0].Body != string(dispatch.PoisonBody) {
		t.Errorf("poison: pushes %+v", got)
	}
	if got := ep.of(ids["dup"]); len(got) != 2 || !got[1].At.After(got[0].At.Add(90*time.Millisecond)) {
		t.Errorf("sequential duplicate: pushes %+v, want two, the second after the first answered", got)
	}
	if got := ep.of(ids["both"]); len(got) != 2 || got[1].At.Sub(got[0].At) > 90*time.Millisecond {
		t.Errorf("concurrent duplicate: pushes %+v, want two at the same time", got)
	}
	if got := ep.of(ids["none"]); len(got) != 1 || got[0].Body != "body-none" {
		t.Errorf("no fault: pushes %+v", got)
	}
	for what, id := range ids {
		if m := e.srv.Message(id); m.Acks != 1 {
			t.Errorf("%s: acks %d, want 1", what, m.Acks)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range seen {
		if p.Subscription != s.ID || p.Topic != s.Topic || p.Consumer != s.Consumer || p.MessageID == "" || p.Attempt < 1 {
			t.Errorf("hook saw %+v", p)
		}
	}
}
