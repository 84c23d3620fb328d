package observability

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestParseTraceparent(t *testing.T) {
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	const span = "00f067aa0ba902b7"
	tests := []struct {
		name    string
		in      string
		want    TraceContext
		wantErr string
	}{
		{name: "sampled", in: "00-" + trace + "-" + span + "-01", want: TraceContext{TraceID: trace, SpanID: span, Sampled: true}},
		{name: "not sampled", in: "00-" + trace + "-" + span + "-00", want: TraceContext{TraceID: trace, SpanID: span}},
		{name: "other flags keep sampled bit", in: "00-" + trace + "-" + span + "-03", want: TraceContext{TraceID: trace, SpanID: span, Sampled: true}},
		{name: "future version with extra field", in: "01-" + trace + "-" + span + "-01-whatever", want: TraceContext{TraceID: trace, SpanID: span, Sampled: true}},
		{name: "empty", in: "", wantErr: `"": empty`},
		{name: "short", in: "00-" + trace + "-" + span, wantErr: "want 55 characters"},
		{name: "version ff", in: "ff-" + trace + "-" + span + "-01", wantErr: "version ff is forbidden"},
		{name: "version not hex", in: "zz-" + trace + "-" + span + "-01", wantErr: "version must be lower-case hex"},
		{name: "version 00 too long", in: "00-" + trace + "-" + span + "-01-x", wantErr: "exactly 55 characters, got 57"},
		{name: "upper-case trace id", in: "00-" + strings.ToUpper(trace) + "-" + span + "-01", wantErr: "trace-id must be lower-case hex"},
		{name: "zero trace id", in: "00-" + strings.Repeat("0", 32) + "-" + span + "-01", wantErr: "trace-id must not be all zeros"},
		{name: "zero span id", in: "00-" + trace + "-" + strings.Repeat("0", 16) + "-01", wantErr: "parent-id must not be all zeros"},
		{name: "bad separator", in: "00_" + trace + "-" + span + "-01", wantErr: "separated by '-'"},
		{name: "flags not hex", in: "00-" + trace + "-" + span + "-0g", wantErr: "trace-flags must be lower-case hex"},
		{name: "future version glued data", in: "01-" + trace + "-" + span + "-01x", wantErr: "unexpected data after trace-flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTraceparent(tt.in)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalidTraceparent) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseTraceparent(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTraceparent(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseTraceparent(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestTraceparentRoundTrip(t *testing.T) {
	for _, sampled := range []bool{true, false} {
		tc := NewTrace(sampled)
		got, err := ParseTraceparent(tc.Traceparent())
		if err != nil {
			t.Fatal(err)
		}
		if got != tc {
			t.Fatalf("round trip = %+v, want %+v", got, tc)
		}
	}
	if (TraceContext{}).Traceparent() != "" {
		t.Fatal("zero TraceContext must format as empty")
	}
}

func TestParseCloudTraceContext(t *testing.T) {
	const trace = "105445aa7843bc8bf206b12000100000"
	tests := []struct {
		name    string
		in      string
		want    TraceContext
		wantErr string
	}{
		{name: "full", in: trace + "/1;o=1", want: TraceContext{TraceID: trace, SpanID: "0000000000000001", Sampled: true}},
		{name: "large span", in: trace + "/18446744073709551615;o=0", want: TraceContext{TraceID: trace, SpanID: "ffffffffffffffff"}},
		{name: "no options", in: trace + "/255", want: TraceContext{TraceID: trace, SpanID: "00000000000000ff"}},
		{name: "trace only", in: trace, want: TraceContext{TraceID: trace}},
		{name: "upper case trace id is folded", in: strings.ToUpper(trace) + "/1;o=1", want: TraceContext{TraceID: trace, SpanID: "0000000000000001", Sampled: true}},
		{name: "short trace", in: "abc/1;o=1", wantErr: "trace id must be 32 hex characters, got 3"},
		{name: "span not decimal", in: trace + "/abc;o=1", wantErr: "span id must be an unsigned decimal"},
		{name: "bad options", in: trace + "/1;o=2", wantErr: "options must be o=0 or o=1"},
		{name: "zero trace", in: strings.Repeat("0", 32) + "/1", wantErr: "trace id must not be all zeros"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCloudTraceContext(tt.in)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalidCloudTrace) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	tc := TraceContext{TraceID: trace, SpanID: "00000000000000ff", Sampled: true}
	if got := tc.CloudTraceContext(); got != trace+"/255;o=1" {
		t.Fatalf("CloudTraceContext() = %q", got)
	}
}

func TestNewChildSpanKeepsTrace(t *testing.T) {
	parent := TraceContext{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", Sampled: true, State: "vendor=x"}
	seen := map[string]bool{parent.SpanID: true}
	for range 100 {
		child := NewChildSpan(parent)
		if !child.IsValid() {
			t.Fatalf("child %+v is not valid", child)
		}
		if child.TraceID != parent.TraceID || child.Sampled != parent.Sampled || child.State != parent.State {
			t.Fatalf("child %+v does not continue parent %+v", child, parent)
		}
		if seen[child.SpanID] {
			t.Fatalf("span id %s repeated", child.SpanID)
		}
		seen[child.SpanID] = true
	}
	root := NewChildSpan(TraceContext{})
	if !root.IsValid() || !root.Sampled {
		t.Fatalf("child of nothing = %+v, want a new sampled trace", root)
	}
}

func TestTraceFromHeader(t *testing.T) {
	h := http.Header{}
	if _, ok := TraceFromHeader(h); ok {
		t.Fatal("empty header produced a trace")
	}
	h.Set(CloudTraceHeader, "105445aa7843bc8bf206b12000100000/1;o=1")
	tc, ok := TraceFromHeader(h)
	if !ok || tc.TraceID != "105445aa7843bc8bf206b12000100000" {
		t.Fatalf("cloud trace: %+v %v", tc, ok)
	}
	h.Set(TraceparentHeader, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set(TracestateHeader, "a=b")
	tc, ok = TraceFromHeader(h)
	if !ok || tc.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || tc.State != "a=b" {
		t.Fatalf("traceparent must win: %+v %v", tc, ok)
	}
	h.Set(TraceparentHeader, "garbage")
	tc, ok = TraceFromHeader(h)
	if !ok || tc.TraceID != "105445aa7843bc8bf206b12000100000" {
		t.Fatalf("invalid traceparent must fall back: %+v %v", tc, ok)
	}
}

func TestCarrierRoundTrip(t *testing.T) {
	attrs := map[string]string{}
	tc := NewTrace(true)
	tc.State = "k=v"
	InjectCarrier(tc, func(k, v string) { attrs[k] = v })
	if attrs["traceparent"] != tc.Traceparent() || attrs["tracestate"] != "k=v" {
		t.Fatalf("attrs = %v", attrs)
	}
	got, ok := TraceFromCarrier(func(k string) string { return attrs[k] })
	if !ok || got != tc {
		t.Fatalf("got %+v %v, want %+v", got, ok, tc)
	}
	if _, ok := TraceFromCarrier(func(string) string { return "" }); ok {
		t.Fatal("empty carrier produced a trace")
	}
}

func TestTraceContextInContext(t *testing.T) {
	if _, ok := TraceFromContext(context.Background()); ok {
		t.Fatal("background context has a trace")
	}
	tc := NewTrace(false)
	got, ok := TraceFromContext(WithTrace(context.Background(), tc))
	if !ok || got != tc {
		t.Fatalf("got %+v %v", got, ok)
	}
}
