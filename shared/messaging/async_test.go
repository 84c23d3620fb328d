package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/testing/pubsubtest"
)

func TestPubSubPublishAsyncKeepsOrderAndPausesAKey(t *testing.T) {
	f := pubsubtest.New(t)
	p := messaging.NewPubSub(f.Client)
	defer p.Stop()
	ctx := context.Background()
	var a messaging.AsyncPublisher = p
	// The topic does not exist: every message of the key fails, the later
	// ones because the client paused the key after the first.
	var results []messaging.PublishResult
	for i := range 3 {
		results = append(results, a.PublishAsync(ctx, "late", messaging.Message{Data: []byte(fmt.Sprint(i)), OrderingKey: "k"}))
	}
	for i, r := range results {
		<-r.Ready()
		if _, err := r.Get(ctx); err == nil {
			t.Fatalf("message %d published to a missing topic", i)
		}
	}
	f.CreateTopic(t, "late")
	if _, err := a.PublishAsync(ctx, "late", messaging.Message{Data: []byte("x"), OrderingKey: "k"}).Get(ctx); err == nil {
		t.Fatal("the key was not paused")
	}
	a.ResumePublish("late", "k")
	results = nil
	for i := range 50 {
		results = append(results, a.PublishAsync(ctx, "late", messaging.Message{Data: []byte(fmt.Sprint(i)), OrderingKey: "k"}))
	}
	for i, r := range results {
		if _, err := r.Get(ctx); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	var got []string
	for _, m := range f.Server.Messages() {
		got = append(got, string(m.Data))
	}
	var want []string
	for i := range 50 {
		want = append(want, fmt.Sprint(i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("published %v", got)
	}
}

// TestAsyncAdapter: a plain Publisher behind messaging.Async publishes each
// key in call order, one at a time, pauses a key after a failure until
// ResumePublish, and keeps other keys going; at most concurrency calls run
// at once.
func TestAsyncAdapter(t *testing.T) {
	ctx := context.Background()
	var (
		mu       sync.Mutex
		inFlight = map[string]bool{}
		got      = map[string][]string{}
		running  atomic.Int32
		peak     atomic.Int32
		problems []string
	)
	pub := messaging.PublisherFunc(func(_ context.Context, _ string, m messaging.Message) (string, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		mu.Lock()
		if inFlight[m.OrderingKey] && m.OrderingKey != "" {
			problems = append(problems, "concurrent publishes of "+m.OrderingKey)
		}
		inFlight[m.OrderingKey] = true
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight[m.OrderingKey] = false
			mu.Unlock()
		}()
		if string(m.Data) == "bad-2" {
			return "", errors.New("injected")
		}
		mu.Lock()
		got[m.OrderingKey] = append(got[m.OrderingKey], string(m.Data))
		mu.Unlock()
		return "id", nil
	})
	a := messaging.Async(pub, 3)
	var results []messaging.PublishResult
	for i := range 5 {
		for _, k := range []string{"good", "bad", "other", ""} {
			results = append(results, a.PublishAsync(ctx, "t", messaging.Message{Data: []byte(fmt.Sprintf("%s-%d", k, i)), OrderingKey: k}))
		}
	}
	var failed []string
	for i, r := range results {
		if _, err := r.Get(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("%d", i))
			if i/4 > 2 && i%4 == 1 && !errors.Is(err, messaging.ErrKeyPaused) {
				t.Errorf("later message of the failed key: %v, want ErrKeyPaused", err)
			}
		}
	}
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if p := peak.Load(); p > 3 {
		t.Fatalf("%d publishes at once, limit 3", p)
	}
	want := []string{"good-0", "good-1", "good-2", "good-3", "good-4"}
	if !slices.Equal(got["good"], want) || !slices.Equal(got["bad"], []string{"bad-0", "bad-1"}) || len(got[""]) != 5 {
		t.Fatalf("published %v", got)
	}
	if len(failed) != 3 {
		t.Fatalf("failed results %v, want bad-2, bad-3, bad-4", failed)
	}
	if _, err := a.PublishAsync(ctx, "t", messaging.Message{Data: []byte("bad-5"), OrderingKey: "bad"}).Get(ctx); !errors.Is(err, messaging.ErrKeyPaused) {
		t.Fatalf("publish on a paused key: %v", err)
	}
	a.ResumePublish("t", "bad")
	if _, err := a.PublishAsync(ctx, "t", messaging.Message{Data: []byte("bad-6"), OrderingKey: "bad"}).Get(ctx); err != nil {
		t.Fatalf("after ResumePublish: %v", err)
	}
}
