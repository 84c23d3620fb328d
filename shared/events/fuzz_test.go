package events_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"example.com/platform/shared/events"
	"example.com/platform/shared/events/eventstest"
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
