package replay_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"example.com/platform/shared/deadletter"
	"example.com/platform/shared/messaging"
	"example.com/platform/tools/ops/dlq"
	"example.com/platform/tools/ops/replay"
)

// The replayed message is the original as deadletter.Annotate received
// it, plus the replay attributes.
func TestMessageUndoesAnnotate(t *testing.T) {
	orig := messaging.Message{
		Data:        []byte(`{"order_id":"o1"}`),
		Attributes:  map[string]string{"ce-id": "e1", "ce-type": "t", "ce-source": "s", "traceparent": "00-x-y-01", "Content-Type": "application/json"},
		OrderingKey: "o1",
	}
	dead := deadletter.Annotate(orig, deadletter.Reason{Consumer: "payment", SourceTopic: "order.created", Subscription: "payment--order.created", MessageID: "123", Attempt: 2})
	dead.Attributes[deadletter.AttrPubSubDeliveryCount] = "5"
	dead.Attributes[replay.AttrReplayCount] = "1" // replayed once before
	dead.Attributes[replay.AttrReplayID] = "old"
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	got := replay.Message(dlq.Entry{Attributes: dead.Attributes, Body: dead.Data}, replay.Stamp{ReplayID: "r1", At: at, By: "bob", Count: 2})

	want := maps.Clone(orig.Attributes)
	want[replay.AttrReplayID] = "r1"
	want[replay.AttrReplayedAt] = "2030-01-01T00:00:00Z"
	want[replay.AttrReplayedBy] = "bob"
	want[replay.AttrReplayCount] = "2"
	if !maps.Equal(got.Attributes, want) {
		t.Errorf("attributes\n got %v\nwant %v", got.Attributes, want)
	}
	if string(got.Data) != string(orig.Data) || got.OrderingKey != "o1" {
		t.Errorf("data %q key %q", got.Data, got.OrderingKey)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"": 0, "0": 0, "5": 5, "5/s": 5, "120/m": 2, "3600/h": 1, "0.5/s": 0.5} {
		got, err := replay.ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "-1/s", "5/d", "/s"} {
		if _, err := replay.ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
	if replay.NewLimiter(0, replay.SystemClock{}) != nil {
		t.Error("rate 0 must mean no limiter")
	}
}

type stepClock struct {
	now    time.Time
	slept  time.Duration
	cancel bool
}

func (c *stepClock) Now() time.Time { return c.now }
func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	if c.cancel {
		return context.Canceled
	}
	c.slept += d
	c.now = c.now.Add(d)
	return nil
}

func TestLimiterPacesByItsClock(t *testing.T) {
	c := &stepClock{now: time.Unix(0, 0)}
	l := replay.NewLimiter(10, c)
	for range 11 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if c.slept != time.Second {
		t.Errorf("11 waits at 10/s slept %s, want 1s", c.slept)
	}
	// Time passing outside the limiter refills the bucket (burst one).
	c.now = c.now.Add(time.Hour)
	before := c.slept
	l.Wait(context.Background())
	if c.slept != before {
		t.Errorf("a wait after an idle hour slept")
	}
	c.cancel = true
	if err := l.Wait(context.Background()); err == nil {
		t.Error("a cancelled wait returned nil")
	}
}
