package events_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"example.com/platform/shared/events"
	"example.com/platform/shared/events/eventstest"
	"example.com/platform/shared/messaging"
	"example.com/platform/shared/retry"
)

// headerBlob renders headers as "Name: value" lines, the fuzzer's second input.
func headerBlob(h http.Header) string {
	var lines []string
	for k, vs := range h {
		for _, v := range vs {
			lines = append(lines, k+": "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func parseHeaderBlob(s string) http.Header {
	h := http.Header{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k != "" {
			h.Add(k, strings.TrimSpace(v))
		}
	}
	return h
}

// FuzzDecodeRequest checks that DecodeRequest never panics, always returns
// an Incoming carrying the received body, and that every failure on an
// in-memory body is permanent. `go test` runs the seeds below;
// `go test -fuzz=FuzzDecodeRequest ./events` explores further.
func FuzzDecodeRequest(f *testing.F) {
	const maxBody = 4096
	_, m, err := events.NewMessage(context.Background(), testSource, validCreated())
	if err != nil {
		f.Fatal(err)
	}
	add := func(r *http.Request) {
		var body bytes.Buffer
		if _, err := body.ReadFrom(r.Body); err != nil {
			f.Fatal(err)
		}
		f.Add(body.Bytes(), headerBlob(r.Header))
	}
	add(noWrapperRequest(m, defaultMeta))
	add(eventarcBinaryRequest(f, m))
	add(eventarcStructuredRequest(f, m))
	for _, p := range validPayloads()[1:] {
		_, pm, err := events.NewMessage(context.Background(), testSource, p)
		if err != nil {
			f.Fatal(err)
		}
		add(noWrapperRequest(pm, defaultMeta))
	}
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"`+eventstest.TypeCreated+`","data":null}`),
		"Content-Type: application/cloudevents+json")
	f.Add([]byte(`{"message":{"data":"e30=","attributes":{"ce-specversion":"1.0"}}}`),
		"Ce-Specversion: 1.0\nCe-Id: 1\nCe-Source: /s\nCe-Type: google.cloud.pubsub.topic.v1.messagePublished")
	f.Add([]byte{}, "")
	f.Add([]byte("\xff\xfe"), "Ce-Specversion: 1.0\nCe-Time: 2026-13-45T99:99:99Z\nContent-Type: ;;;")
	f.Add(bytes.Repeat([]byte("x"), maxBody+1), "Ce-Specversion: 1.0")

	f.Fuzz(func(t *testing.T, body []byte, headers string) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header = parseHeaderBlob(headers)
		in, err := events.DecodeRequest(r, maxBody)
		if in == nil {
			t.Fatal("nil Incoming")
		}
		keep := body // kept whole even when over maxBody, for the dead-letter copy
		if in.Event.Type() != events.MessagePublishedType && !isEnvelope(r.Header, body) && !bytes.Equal(in.Message.Data, keep) {
			t.Fatalf("message data = %q, want the body %q", in.Message.Data, keep)
		}
		if in.Message.Attributes == nil {
			t.Fatal("nil attributes")
		}
		if err != nil {
			if !errors.Is(err, retry.ErrPermanent) {
				t.Fatalf("non-permanent error on an in-memory body: %v", err)
			}
			// The error names the problem: "decode event: <what>".
			if what, ok := strings.CutPrefix(err.Error(), "decode event: "); !ok || strings.TrimSpace(what) == "" {
				t.Fatalf("error %q does not name the problem", err)
			}
			if in.Payload != nil {
				t.Fatal("payload set on error")
			}
			return
		}
		if in.Payload == nil || in.Payload.Validate() != nil || in.Event.Validate() != nil {
			t.Fatalf("success without a valid payload and event: %+v", in)
		}
	})
}

// isEnvelope reports whether the request was an Eventarc envelope that
// DecodeRequest unwrapped (its Message is then the inner message).
func isEnvelope(h http.Header, body []byte) bool {
	return strings.EqualFold(h.Get("Ce-Type"), events.MessagePublishedType) ||
		bytes.Contains(body, []byte(events.MessagePublishedType))
}

// pushShapes delivers m the three ways a consumer receives it: a
// no-wrapper push (NewPushRequest, what production and the local
// dispatcher send) and Eventarc's messagePublished envelope in binary and
// structured mode.
func pushShapes(t testing.TB, m messaging.Message, d events.Delivery) map[string]*http.Request {
	t.Helper()
	noWrapper, err := events.NewPushRequest(context.Background(), "http://fn/", m, d)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*http.Request{
		"no-wrapper":         noWrapper,
		"eventarc binary":    eventarcBinaryRequest(t, m),
		"eventarc structure": eventarcStructuredRequest(t, m),
	}
}

// FuzzPushShapesRoundTrip encodes an event built from the fuzzer's fields
// and decodes it from every push shape: an event that validates comes back
// equal, payload, attributes and body; one that does not is refused by the
// encoder with a permanent error.
func FuzzPushShapesRoundTrip(f *testing.F) {
	c := validCreated()
	f.Add(c.Name, c.Parts[0].Name, c.Parts[0].Quantity, c.Count, int64(1777638645), int64(123456789))
	f.Add("", "", int64(0), int64(-1), int64(0), int64(0))
	f.Add("na\nme", "part\u2028", int64(1), int64(1000), int64(-62135596800), int64(0))
	f.Add("\xff", "\x00", int64(2), int64(3), int64(253402300799), int64(999999999))
	f.Fuzz(func(t *testing.T, name, part string, qty, count, sec, nsec int64) {
		p := eventstest.Created{
			ThingID: c.ThingID, Name: name, Count: count,
			Parts: []eventstest.Part{{Name: part, Quantity: qty}},
			At:    time.Unix(sec, nsec%1e9).UTC(),
		}
		_, m, err := events.NewMessage(context.Background(), testSource, p)
		if verr := p.Validate(); verr != nil {
			if err == nil {
				t.Fatalf("NewMessage accepted an invalid payload (%v)", verr)
			}
			if !errors.Is(err, retry.ErrPermanent) || err.Error() == "" {
				t.Fatalf("invalid payload: error %v is not permanent or names nothing", err)
			}
			return
		}
		if err != nil {
			// A valid payload the encoder cannot write (a time JSON cannot
			// hold) must still fail permanently.
			if !errors.Is(err, retry.ErrPermanent) {
				t.Fatalf("NewMessage(valid payload) = %v, not permanent", err)
			}
			return
		}
		d := events.Delivery{Subscription: "projects/p/subscriptions/things--thing.created", MessageID: "m-1", Attempt: 1}
		for shape, r := range pushShapes(t, m, d) {
			in, err := events.DecodeRequest(r, 0)
			if err != nil {
				t.Fatalf("%s: DecodeRequest of an encoded valid event: %v", shape, err)
			}
			if !reflect.DeepEqual(in.Payload, p) {
				t.Fatalf("%s: payload\n got %#v\nwant %#v", shape, in.Payload, p)
			}
			if !bytes.Equal(in.Message.Data, m.Data) || !maps.Equal(in.Message.Attributes, m.Attributes) {
				t.Fatalf("%s: message\n got %#v\nwant %#v", shape, in.Message, m)
			}
		}
	})
}
