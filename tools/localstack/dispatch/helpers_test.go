package dispatch_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"example.com/platform/shared/events"
	"example.com/platform/tools/localstack/dispatch"
)

const project = "local-project"

type env struct {
	srv     *pstest.Server
	client  *pubsub.Client
	counter *dispatch.PublishCounter
}

func newEnv(t *testing.T) *env {
	t.Helper()
	counter := dispatch.NewPublishCounter()
	srv := pstest.NewServer(counter.ServerOption())
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client, err := pubsub.NewClient(context.Background(), project, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		conn.Close()
		srv.Close()
	})
	return &env{srv: srv, client: client, counter: counter}
}

// provision creates the topics of subs, their dead-letter topics, the
// subscriptions, and a plain "<dlq>--check" pull subscription on every
// dead-letter topic that the test reads.
func (e *env) provision(t *testing.T, subs ...dispatch.Subscription) {
	t.Helper()
	p := &dispatch.Plan{Subscriptions: subs}
	seen := map[string]bool{}
	for _, s := range subs {
		for _, topic := range []string{s.Topic, s.DeadLetterTopic} {
			if !seen[topic] {
				seen[topic] = true
				p.Topics = append(p.Topics, topic)
			}
		}
		p.Retained = append(p.Retained, dispatch.Subscription{ID: s.DeadLetterTopic + "--check", Topic: s.DeadLetterTopic})
	}
	if err := dispatch.Provision(context.Background(), e.client, p); err != nil {
		t.Fatal(err)
	}
}

func (e *env) publish(t *testing.T, topic string, data string, attrs map[string]string, key string) string {
	t.Helper()
	resp, err := e.client.TopicAdminClient.Publish(context.Background(), &pubsubpb.PublishRequest{
		Topic:    dispatch.TopicName(project, topic),
		Messages: []*pubsubpb.PubsubMessage{{Data: []byte(data), Attributes: attrs, OrderingKey: key}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.MessageIds[0]
}

// pullAll pulls and acks everything waiting on a subscription.
func (e *env) pullAll(t *testing.T, sub string) []*pubsubpb.PubsubMessage {
	t.Helper()
	resp, err := e.client.SubscriptionAdminClient.Pull(context.Background(), &pubsubpb.PullRequest{
		Subscription: dispatch.SubscriptionName(project, sub), MaxMessages: 100, ReturnImmediately: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []*pubsubpb.PubsubMessage
	var ids []string
	for _, m := range resp.ReceivedMessages {
		out = append(out, m.Message)
		ids = append(ids, m.AckId)
	}
	if len(ids) > 0 {
		if err := e.client.SubscriptionAdminClient.Acknowledge(context.Background(), &pubsubpb.AcknowledgeRequest{
			Subscription: dispatch.SubscriptionName(project, sub), AckIds: ids,
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// start runs a dispatcher until the test ends and returns it.
func (e *env) start(t *testing.T, cfg dispatch.Config, subs ...dispatch.Subscription) *dispatch.Dispatcher {
	t.Helper()
	cfg.Client = e.client
	if cfg.Counter == nil {
		cfg.Counter = e.counter
	}
	d, err := dispatch.New(cfg, subs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return d
}

func waitQuiet(t *testing.T, d *dispatch.Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.WaitQuiet(ctx); err != nil {
		t.Fatal(err)
	}
}

// push is one request an endpoint received.
type push struct {
	At          time.Time
	MessageID   string
	Attempt     int
	OrderingKey string
	Body        string
	Header      http.Header
	Status      int
}

// endpoint records every push and answers with decide(push) (the status).
type endpoint struct {
	mu     sync.Mutex
	pushes []push
	srv    *httptest.Server
}

func newEndpoint(t *testing.T, decide func(p push, n int) int) *endpoint {
	t.Helper()
	e := &endpoint{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		attempt, _ := strconv.Atoi(r.Header.Get(events.HeaderDeliveryAttempt))
		p := push{
			At: time.Now(), MessageID: r.Header.Get(events.HeaderMessageID), Attempt: attempt,
			OrderingKey: r.Header.Get(events.HeaderOrderingKey), Body: string(body), Header: r.Header.Clone(),
		}
		e.mu.Lock()
		n := 1
		for _, q := range e.pushes {
			if q.MessageID == p.MessageID {
				n++
			}
		}
		i := len(e.pushes)
		e.pushes = append(e.pushes, p)
		e.mu.Unlock()
		status := decide(p, n)
		e.mu.Lock()
		e.pushes[i].Status = status
		e.mu.Unlock()
		w.WriteHeader(status)
		if !dispatch.Success(status) {
			_, _ = io.WriteString(w, "failed\nwith detail\n")
		}
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) all() []push {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]push(nil), e.pushes...)
}

func (e *endpoint) of(id string) []push {
	var out []push
	for _, p := range e.all() {
		if p.MessageID == id {
			out = append(out, p)
		}
	}
	return out
}

func always(status int) func(push, int) int { return func(push, int) int { return status } }

func sub(id, url string) dispatch.Subscription {
	return dispatch.Subscription{
		ID: id, Topic: "t." + id, Consumer: "fn-" + id, URL: url, DeadLetterTopic: "fn-" + id + ".dlq",
		MaxDeliveryAttempts: 5, MinBackoff: 10 * time.Second, MaxBackoff: 600 * time.Second, AckDeadline: 10 * time.Second,
	}
}
