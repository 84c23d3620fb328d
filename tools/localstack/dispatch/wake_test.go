package dispatch_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"example.com/platform/tools/localstack/dispatch"
)

// With a poll interval far longer than the test, messages are still
// pushed at once: a publish to the topic wakes the pull loop, and so does
// the end of a delivery (the next message of an ordering key becomes
// pullable only then, with no publish to signal it).
func TestPublishAndSettleWakeThePullLoop(t *testing.T) {
	e := newEnv(t)
	ep := newEndpoint(t, always(http.StatusOK))
	s := sub("wake", ep.srv.URL)
	s.Ordering = true
	e.provision(t, s)
	e.start(t, dispatch.Config{PollInterval: time.Hour}, s)
	time.Sleep(50 * time.Millisecond) // the first pull found nothing; the loop now waits

	start := time.Now()
	for i := range 3 {
		e.publish(t, s.Topic, "body-"+strconv.Itoa(i), nil, "key-1")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(ep.all()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := len(ep.all()); got != 3 {
		t.Fatalf("pushes = %d after %s with an hour's poll interval, want 3", got, time.Since(start))
	}
}
