package dispatch_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/events"
	"example.com/platform/shared/manifest"
	"example.com/platform/tools/localstack/dispatch"
)

func TestAcksOn2xxWithPushHeaders(t *testing.T) {
	e := newEnv(t)
	ep := newEndpoint(t, always(http.StatusNoContent))
	s := sub("ack", ep.srv.URL)
	s.Ordering = true
	e.provision(t, s)
	d := e.start(t, dispatch.Config{}, s)

	var ids []string
	for i := range 3 {
		ids = append(ids, e.publish(t, s.Topic, "body-"+strconv.Itoa(i), map[string]string{"ce-id": "ev-" + strconv.Itoa(i), "Content-Type": "application/json"}, "order-1"))
	}
	waitQuiet(t, d)

	got := ep.all()
	if len(got) != 3 {
		t.Fatalf("pushes = %d, want 3", len(got))
	}
	for i, p := range got {
		if p.MessageID != ids[i] || p.Body != "body-"+strconv.Itoa(i) || p.Attempt != 1 || p.OrderingKey != "order-1" {
			t.Errorf("push %d = %+v", i, p)
		}
		if p.Header.Get("ce-id") != "ev-"+strconv.Itoa(i) || p.Header.Get("Content-Type") != "application/json" {
			t.Errorf("push %d attributes as headers: %v", i, p.Header)
		}
		if p.Header.Get(events.HeaderSubscription) != dispatch.SubscriptionName(project, s.ID) || p.Header.Get(events.HeaderPublishTime) == "" {
			t.Errorf("push %d metadata: %v", i, p.Header)
		}
		if m := e.srv.Message(ids[i]); m.Acks != 1 {
			t.Errorf("message %s acks = %d, want 1", ids[i], m.Acks)
		}
	}
	st := d.Stats()[0]
	if st.Acked != 3 || st.Unacked != 0 || st.InFlight != 0 || st.Published != 3 || st.Failures != 0 || !st.Idle {
		t.Errorf("stats = %+v", st)
	}
}

func TestSuccessStatuses(t *testing.T) {
	for status, want := range map[int]bool{102: true, 200: true, 201: true, 202: true, 204: true, 203: false, 206: false, 299: false, 301: false, 400: false, 409: false, 429: false, 500: false, 503: false} {
		if got := dispatch.Success(status); got != want {
			t.Errorf("Success(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestNon2xxIsRetried(t *testing.T) {
	for _, status := range []int{203, 301, 400, 409, 429, 500, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			e := newEnv(t)
			ep := newEndpoint(t, func(p push, n int) int {
				if n == 1 {
					return status
				}
				return http.StatusOK
			})
			s := sub("retry", ep.srv.URL)
			e.provision(t, s)
			d := e.start(t, dispatch.Config{BackoffScale: 0.001}, s)
			id := e.publish(t, s.Topic, "x", nil, "")
			waitQuiet(t, d)
			got := ep.of(id)
			if len(got) != 2 || got[0].Attempt != 1 || got[1].Attempt != 2 {
				t.Fatalf("pushes = %+v", got)
			}
		})
	}
}

// The default scale is the manifest's real backoff: the gaps between
// attempts, measured by the endpoint, are at least min_backoff and grow.
func TestBackoffRealWaits(t *testing.T) {
	e := newEnv(t)
	ep := newEndpoint(t, func(p push, n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	s := sub("real", ep.srv.URL)
	s.MinBackoff, s.MaxBackoff = time.Second, 4*time.Second
	e.provision(t, s)
	d := e.start(t, dispatch.Config{}, s)
	id := e.publish(t, s.Topic, "x", nil, "")
	waitQuiet(t, d)
	got := ep.of(id)
	if len(got) != 3 {
		t.Fatalf("pushes = %d, want 3", len(got))
	}
	gap1, gap2 := got[1].At.Sub(got[0].At), got[2].At.Sub(got[1].At)
	if gap1 < time.Second || gap2 < 2*time.Second {
		t.Fatalf("gaps = %v, %v; want >= 1s, >= 2s", gap1, gap2)
	}
	if gap1 > 3*time.Second || gap2 > 4*time.Second {
		t.Fatalf("gaps = %v, %v; too long", gap1, gap2)
	}
}

// A scaled backoff keeps the exponential shape of the manifest's values.
func TestBackoffScaledSequence(t *testing.T) {
	e := newEnv(t)
	ep := newEndpoint(t, func(p push, n int) int {
		if n <= 4 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	s := sub("scaled", ep.srv.URL) // 10s .. 600s
	s.MaxDeliveryAttempts = 10
	e.provision(t, s)
	const scale = 0.01
	var mu sync.Mutex
	var backoffs []time.Duration
	d := e.start(t, dispatch.Config{BackoffScale: scale, Observer: func(ev dispatch.Event) {
		if ev.Outcome == dispatch.OutcomeRetry {
			mu.Lock()
			backoffs = append(backoffs, ev.Backoff)
			mu.Unlock()
		}
	}}, s)
	id := e.publish(t, s.Topic, "x", nil, "")
	waitQuiet(t, d)
	got := ep.of(id)
	if len(got) != 5 {
		t.Fatalf("pushes = %d, want 5", len(got))
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	for i := 1; i < len(got); i++ {
		if gap := got[i].At.Sub(got[i-1].At); gap < want[i-1] {
			t.Errorf("gap %d = %v, want >= %v", i, gap, want[i-1])
		}
		if got[i].Attempt != i+1 {
			t.Errorf("attempt header of push %d = %d", i, got[i].Attempt)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, b := range backoffs {
		if b != want[i] {
			t.Errorf("backoff %d = %v, want %v", i, b, want[i])
		}
	}
	if b := d.Backoff(s, 20); b != 6*time.Second {
		t.Errorf("Backoff(20) = %v, want max_backoff 600s scaled = 6s", b)
	}
}

// A failing message holds back the later messages of its key; other keys
// flow past it.
func TestOrderingKeyWaitsBehindFailure(t *testing.T) {
	e := newEnv(t)
	ep := newEndpoint(t, func(p push, n int) int {
		if p.Body == "a1" && n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	s := sub("ordered", ep.srv.URL)
	s.Ordering = true
	s.MinBackoff, s.MaxBackoff = 100*time.Millisecond, 200*time.Millisecond
	e.provision(t, s)
	a1 := e.publish(t, s.Topic, "a1", nil, "A")
	a2 := e.publish(t, s.Topic, "a2", nil, "A")
	a3 := e.publish(t, s.Topic, "a3", nil, "A")
	b1 := e.publish(t, s.Topic, "b1", nil, "B")
	d := e.start(t, dispatch.Config{}, s)
	waitQuiet(t, d)

	pa1, pa2, pa3, pb1 := ep.of(a1), ep.of(a2), ep.of(a3), ep.of(b1)
	if len(pa1) != 3 || len(pa2) != 1 || len(pa3) != 1 || len(pb1) != 1 {
		t.Fatalf("pushes a1=%d a2=%d a3=%d b1=%d", len(pa1), len(pa2), len(pa3), len(pb1))
	}
	a1done := pa1[2].At
	if !pa2[0].At.After(a1done) || !pa3[0].At.After(pa2[0].At) {
		t.Errorf("key A out of order: a1 ok at %v, a2 at %v, a3 at %v", a1done, pa2[0].At, pa3[0].At)
	}
	if !pb1[0].At.Before(a1done) {
		t.Errorf("key B waited for key A: b1 at %v, a1 ok at %v", pb1[0].At, a1done)
	}
}

// Without ordering, a failing message holds back nothing.
func TestUnorderedFailureDoesNotBlock(t *testing.T) {
	e := newEnv(t)
	ep := newEndpoint(t, func(p push, n int) int {
		if p.Body == "x1" && n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	s := sub("unordered", ep.srv.URL)
	s.MinBackoff, s.MaxBackoff = 300*time.Millisecond, 300*time.Millisecond
	e.provision(t, s)
	x1 := e.publish(t, s.Topic, "x1", nil, "K")
	x2 := e.publish(t, s.Topic, "x2", nil, "K")
	d := e.start(t, dispatch.Config{}, s)
	waitQuiet(t, d)
	if p1, p2 := ep.of(x1), ep.of(x2); len(p1) != 2 || len(p2) != 1 || !p2[0].At.Before(p1[1].At) {
		t.Fatalf("x1=%+v x2=%+v", p1, p2)
	}
}

func TestDeadLetterAfterMaxAttempts(t *testing.T) {
	e := newEnv(t)
	ep := newEndpoint(t, always(http.StatusInternalServerError))
	s := sub("dlq", ep.srv.URL)
	s.Ordering = true
	e.provision(t, s)
	d := e.start(t, dispatch.Config{BackoffScale: 0.001}, s)
	attrs := map[string]string{"ce-id": "ev-1", "ce-type": "com.example.test.v1", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	id := e.publish(t, s.Topic, `{"order_id":"o-1"}`, attrs, "o-1")
	waitQuiet(t, d)

	got := ep.of(id)
	if len(got) != 5 {
		t.Fatalf("pushes = %d, want max_delivery_attempts 5", len(got))
	}
	for i, p := range got {
		if p.Attempt != i+1 {
			t.Errorf("push %d attempt = %d", i, p.Attempt)
		}
	}
	orig := e.srv.Message(id)
	if orig.Acks != 1 {
		t.Errorf("original acks = %d, want 1", orig.Acks)
	}
	dead := e.pullAll(t, s.DeadLetterTopic+"--check")
	if len(dead) != 1 {
		t.Fatalf("dead-lettered = %d, want 1", len(dead))
	}
	m := dead[0]
	if string(m.Data) != `{"order_id":"o-1"}` || m.OrderingKey != "o-1" {
		t.Errorf("dead letter body/key = %q %q", m.Data, m.OrderingKey)
	}
	for k, v := range attrs {
		if m.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, m.Attributes[k], v)
		}
	}
	want := map[string]string{
		deadletter.AttrPubSubDeliveryCount:       "5",
		deadletter.AttrPubSubSubscription:        s.ID,
		deadletter.AttrPubSubSubscriptionProject: project,
		deadletter.AttrPubSubTopicPublishTime:    orig.PublishTime.UTC().Format(deadletter.PubSubPublishTimeLayout),
	}
	for k, v := range want {
		if m.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, m.Attributes[k], v)
		}
	}
	if got, want := m.Attributes[deadletter.AttrPubSubDeliveryError], "push endpoint returned HTTP 500: failed with detail"; got != want {
		t.Errorf("%s = %q, want %q (one line: it becomes a header)", deadletter.AttrPubSubDeliveryError, got, want)
	}
	if _, err := time.Parse(deadletter.PubSubPublishTimeLayout, m.Attributes[deadletter.AttrPubSubTopicPublishTime]); err != nil {
		t.Error(err)
	}
	st := d.Stats()[0]
	if st.DeadLettered != 1 || st.Acked != 0 || st.Failures != 5 || st.Unacked != 0 {
		t.Errorf("stats = %+v", st)
	}
	// Unlike pstest's own dead-lettering, nothing is forwarded again.
	if n := len(ep.of(id)); n != 5 {
		t.Errorf("pushes after dead-lettering = %d", n)
	}
}

// A connection error and a push slower than the ack deadline are failed
// deliveries too.
func TestConnectionErrorAndTimeoutFail(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()

	e := newEnv(t)
	refused := sub("refused", closedURL)
	refused.MinBackoff, refused.MaxBackoff = 10*time.Millisecond, 10*time.Millisecond

	release := make(chan struct{})
	slow := newEndpoint(t, func(p push, n int) int {
		if n == 1 {
			<-release
		}
		return http.StatusOK
	})
	t.Cleanup(func() { close(release) })
	timeout := sub("timeout", slow.srv.URL)
	timeout.AckDeadline = 200 * time.Millisecond
	timeout.MinBackoff, timeout.MaxBackoff = 10*time.Millisecond, 10*time.Millisecond
	e.provision(t, refused, timeout)
	d := e.start(t, dispatch.Config{}, refused, timeout)
	e.publish(t, refused.Topic, "r", nil, "")
	tid := e.publish(t, timeout.Topic, "t", nil, "")
	waitQuiet(t, d)

	dead := e.pullAll(t, refused.DeadLetterTopic+"--check")
	if len(dead) != 1 || dead[0].Attributes[deadletter.AttrPubSubDeliveryCount] != "5" {
		t.Fatalf("refused endpoint: dead letters = %+v", dead)
	}
	if got := slow.of(tid); len(got) != 2 || got[1].Attempt != 2 {
		t.Fatalf("slow endpoint pushes = %+v", got)
	}
}

func TestDuplicateModeDeliversTwice(t *testing.T) {
	e := newEnv(t)
	ep := newEndpoint(t, always(http.StatusOK))
	s := sub("dup", ep.srv.URL)
	s.Ordering = true
	e.provision(t, s)
	d := e.start(t, dispatch.Config{Duplicate: true}, s)
	id1 := e.publish(t, s.Topic, "one", nil, "k")
	id2 := e.publish(t, s.Topic, "two", nil, "k")
	waitQuiet(t, d)
	for _, id := range []string{id1, id2} {
		got := ep.of(id)
		if len(got) != 2 || got[0].Body != got[1].Body || got[0].Attempt != 1 || got[1].Attempt != 2 {
			t.Errorf("pushes of %s = %+v", id, got)
		}
		if m := e.srv.Message(id); m.Acks != 1 {
			t.Errorf("acks of %s = %d", id, m.Acks)
		}
	}
	d.SetDuplicate(false)
	id3 := e.publish(t, s.Topic, "three", nil, "k")
	waitQuiet(t, d)
	if got := ep.of(id3); len(got) != 1 {
		t.Errorf("after SetDuplicate(false): %d pushes", len(got))
	}
}

func TestFilterHonoured(t *testing.T) {
	e := newEnv(t)
	ep := newEndpoint(t, always(http.StatusOK))
	s := sub("filter", ep.srv.URL)
	s.Filter = `attributes.region = "eu"`
	e.provision(t, s)
	d := e.start(t, dispatch.Config{}, s)
	keep := e.publish(t, s.Topic, "keep", map[string]string{"region": "eu"}, "")
	drop := e.publish(t, s.Topic, "drop", map[string]string{"region": "us"}, "")
	waitQuiet(t, d)
	if len(ep.of(keep)) != 1 || len(ep.of(drop)) != 0 {
		t.Fatalf("pushes = %+v", ep.all())
	}
}

func TestSetURL(t *testing.T) {
	e := newEnv(t)
	old := newEndpoint(t, always(http.StatusServiceUnavailable))
	cur := newEndpoint(t, always(http.StatusOK))
	s := sub("moved", old.srv.URL)
	s.MinBackoff, s.MaxBackoff = 50*time.Millisecond, 50*time.Millisecond
	e.provision(t, s)
	var once sync.Once
	var d *dispatch.Dispatcher
	ready := make(chan struct{})
	d = e.start(t, dispatch.Config{Observer: func(ev dispatch.Event) {
		if ev.Outcome == dispatch.OutcomeRetry {
			once.Do(func() { <-ready; d.SetURL(s.Consumer, cur.srv.URL) })
		}
	}}, s)
	close(ready)
	id := e.publish(t, s.Topic, "x", nil, "")
	waitQuiet(t, d)
	if len(old.of(id)) != 1 || len(cur.of(id)) != 1 || cur.of(id)[0].Attempt != 2 {
		t.Fatalf("old=%+v new=%+v", old.of(id), cur.of(id))
	}
}

// Stopping the dispatcher returns promptly even while a message waits for
// a long backoff, and nacks it: a later dispatcher delivers it.
func TestShutdownNacksHeldMessages(t *testing.T) {
	e := newEnv(t)
	failing := newEndpoint(t, always(http.StatusInternalServerError))
	s := sub("stop", failing.srv.URL) // 10s minimum backoff
	e.provision(t, s)
	retried := make(chan struct{}, 1)
	d, err := dispatch.New(dispatch.Config{Client: e.client, Counter: e.counter, Observer: func(ev dispatch.Event) {
		if ev.Outcome == dispatch.OutcomeRetry {
			retried <- struct{}{}
		}
	}}, []dispatch.Subscription{s})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	id := e.publish(t, s.Topic, "x", nil, "")
	<-retried
	if d.Quiet() {
		t.Error("Quiet while a message waits for redelivery")
	}
	stopped := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if time.Since(stopped) > 3*time.Second {
		t.Errorf("shutdown took %v", time.Since(stopped))
	}
	if err := d.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}

	ok := newEndpoint(t, always(http.StatusOK))
	s.URL = ok.srv.URL
	acked := make(chan struct{}, 1)
	d2 := e.start(t, dispatch.Config{Observer: func(ev dispatch.Event) {
		if ev.MessageID == id && ev.Outcome == dispatch.OutcomeAcked {
			acked <- struct{}{}
		}
	}}, s)
	// The nacked message is redelivered to the new dispatcher. Wait for
	// that delivery itself: a quiet dispatcher only says nothing was
	// pulled yet, and the nack may reach the server's redelivery a poll
	// later.
	select {
	case <-acked:
	case <-time.After(30 * time.Second):
		t.Fatal("the message held at shutdown was never redelivered")
	}
	waitQuiet(t, d2)
	if got := ok.of(id); len(got) != 1 {
		t.Fatalf("after restart: pushes = %+v", got)
	}
}

func TestWaitQuietReportsBusySubscriptions(t *testing.T) {
	e := newEnv(t)
	ep := newEndpoint(t, always(http.StatusInternalServerError))
	s := sub("busy", ep.srv.URL)
	e.provision(t, s)
	d := e.start(t, dispatch.Config{}, s)
	e.publish(t, s.Topic, "x", nil, "")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := d.WaitQuiet(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitQuiet = %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t)
	if _, err := dispatch.New(dispatch.Config{}, nil); !errors.Is(err, dispatch.ErrNoClient) {
		t.Errorf("no client: %v", err)
	}
	if _, err := dispatch.New(dispatch.Config{Client: e.client, BackoffScale: -1}, nil); !errors.Is(err, dispatch.ErrBadScale) {
		t.Errorf("scale: %v", err)
	}
	bad := dispatch.Subscription{ID: "x", Topic: "t", MinBackoff: 5 * time.Second, MaxBackoff: time.Second, MaxDeliveryAttempts: -1}
	_, err := dispatch.New(dispatch.Config{Client: e.client}, []dispatch.Subscription{bad, bad})
	for _, want := range []error{dispatch.ErrNoURL, dispatch.ErrNoDeadLetter, dispatch.ErrBadBackoff, dispatch.ErrBadAttempts} {
		if !errors.Is(err, want) {
			t.Errorf("error %v does not wrap %v", err, want)
		}
	}
	good := sub("a", "http://127.0.0.1:1")
	if _, err := dispatch.New(dispatch.Config{Client: e.client}, []dispatch.Subscription{good, good}); !errors.Is(err, dispatch.ErrDuplicateID) {
		t.Errorf("duplicate: %v", err)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "topics.yaml")); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestPlanRepoFollowsManifests(t *testing.T) {
	repo, err := manifest.LoadRepo(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := dispatch.PlanRepo(repo)
	if err != nil {
		t.Fatal(err)
	}
	topics := map[string]bool{}
	for _, tp := range p.Topics {
		topics[tp] = true
	}
	for tp := range repo.Topics.Topics {
		if !topics[tp] {
			t.Errorf("topic %s missing", tp)
		}
	}
	subs := map[string]dispatch.Subscription{}
	for _, s := range p.Subscriptions {
		subs[s.ID] = s
	}
	var dlqConsumers []string
	for _, m := range repo.Functions {
		if m.Kind != manifest.KindCloudEvent {
			if topics[manifest.DeadLetterTopic(m.Name)] {
				t.Errorf("%s is not a cloudevent function but has a dead-letter topic", m.Name)
			}
			continue
		}
		if !topics[manifest.DeadLetterTopic(m.Name)] {
			t.Errorf("dead-letter topic of %s missing", m.Name)
		}
		for _, c := range m.Consumes {
			s, ok := subs[manifest.SubscriptionID(m.Name, c.Topic)]
			if !ok {
				t.Errorf("subscription of %s to %s missing", m.Name, c.Topic)
				continue
			}
			min, _ := manifest.Seconds(c.MinBackoff)
			max, _ := manifest.Seconds(c.MaxBackoff)
			if s.Ordering != c.Ordering || s.Filter != c.Filter || s.MaxDeliveryAttempts != c.MaxDeliveryAttempts ||
				s.MinBackoff != time.Duration(min)*time.Second || s.MaxBackoff != time.Duration(max)*time.Second ||
				s.DeadLetterTopic != manifest.DeadLetterTopic(m.Name) || s.Consumer != m.Name || s.Topic != c.Topic {
				t.Errorf("subscription %s = %+v, manifest %+v", s.ID, s, c)
			}
		}
		if m.ConsumesDeadLetters != nil {
			dlqConsumers = append(dlqConsumers, m.Name)
		}
	}
	for _, consumer := range dlqConsumers {
		for _, m := range repo.Functions {
			if m.Kind != manifest.KindCloudEvent || m.Name == consumer {
				continue
			}
			id := manifest.SubscriptionID(consumer, manifest.DeadLetterTopic(m.Name))
			if _, ok := subs[id]; !ok {
				t.Errorf("dead-letter subscription %s missing", id)
			}
		}
		want := manifest.DeadLetterTopic(consumer) + dispatch.RetainedSuffix
		found := false
		for _, r := range p.Retained {
			found = found || r.ID == want
		}
		if !found {
			t.Errorf("retained subscription %s missing: %+v", want, p.Retained)
		}
	}
	if len(dlqConsumers) == 0 {
		t.Error("no function consumes dead letters; the repository changed?")
	}

	// The plan provisions cleanly, twice.
	e := newEnv(t)
	for range 2 {
		if err := dispatch.Provision(context.Background(), e.client, p); err != nil {
			t.Fatal(err)
		}
	}
}
