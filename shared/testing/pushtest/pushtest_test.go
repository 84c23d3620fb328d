package pushtest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"example.com/platform/shared/events"
	"example.com/platform/shared/events/eventstest"
	"example.com/platform/shared/messaging"
)

func TestBothShapesDecodeToTheMessageAndDelivery(t *testing.T) {
	_, m, err := events.NewMessage(context.Background(), "//example.com/tests", eventstest.NewCreated())
	if err != nil {
		t.Fatal(err)
	}
	d := events.Delivery{Subscription: "projects/p/subscriptions/s", MessageID: "m-1", Attempt: 3,
		PublishTime: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	for _, sh := range Shapes("projects/p/topics/" + eventstest.TopicCreated) {
		in, err := events.DecodeRequest(sh.Request(t, "http://fn/", m, d), 0)
		if err != nil {
			t.Fatalf("%s: %v", sh.Name, err)
		}
		want := d
		want.OrderingKey = m.OrderingKey
		if sh.Name == "eventarc" {
			want.Attempt = 0
		}
		if in.Event.ID() != m.Attributes[events.AttrID] || in.Delivery != want {
			t.Fatalf("%s: event %q delivery %+v, want %q %+v", sh.Name, in.Event.ID(), in.Delivery, m.Attributes[events.AttrID], want)
		}
	}
}

func TestSendReturnsStatusAndBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusTeapot)
		w.Write(b)
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, http.NoBody)
	if code, body := Send(t, Binary(t, srv.URL, messaging.Message{Data: []byte("hi")}, events.Delivery{})); code != http.StatusTeapot || body != "hi" {
		t.Fatalf("status %d body %q", code, body)
	}
	srv.Close()
	if _, _, err := Do(req); err == nil {
		t.Fatal("Do against a closed server: no error")
	}
}
