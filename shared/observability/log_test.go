package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func decodeLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestHandlerCloudLoggingShape(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, &HandlerOptions{ProjectID: "proj-1", Labels: map[string]string{LabelFunction: "payment", "static": "s"}})
	tc := TraceContext{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", Sampled: true}
	ctx := WithTrace(context.Background(), tc)
	ctx = WithLabels(ctx, map[string]string{
		LabelEventID: "ev-1", LabelEventType: "com.example.orders.order.created.v1",
		LabelOrderingKey: "order-1", LabelDeliveryAttempt: "3", "static": "overridden",
	})

	before := time.Now()
	log.InfoContext(ctx, "payment captured", "amount", 1250, slog.Group("order", "id", "order-1"))
	log.ErrorContext(ctx, "gateway failed", "err", "boom")

	lines := decodeLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	info := lines[0]
	want := map[string]any{
		"severity":                             "INFO",
		"message":                              "payment captured",
		"logging.googleapis.com/trace":         "projects/proj-1/traces/4bf92f3577b34da6a3ce929d0e0e4736",
		"logging.googleapis.com/spanId":        "00f067aa0ba902b7",
		"logging.googleapis.com/trace_sampled": true,
		"amount":                               float64(1250),
	}
	for k, v := range want {
		if info[k] != v {
			t.Errorf("info[%q] = %#v, want %#v", k, info[k], v)
		}
	}
	for _, gone := range []string{"level", "msg", "logging.googleapis.com/sourceLocation"} {
		if _, ok := info[gone]; ok {
			t.Errorf("info has %q: %v", gone, info)
		}
	}
	ts, err := time.Parse(time.RFC3339Nano, info["time"].(string))
	if err != nil || ts.Before(before.Add(-time.Second)) {
		t.Errorf("time = %v (%v)", info["time"], err)
	}
	labels, _ := info["logging.googleapis.com/labels"].(map[string]any)
	wantLabels := map[string]any{
		"function": "payment", "event_id": "ev-1", "event_type": "com.example.orders.order.created.v1",
		"ordering_key": "order-1", "delivery_attempt": "3", "static": "overridden",
	}
	if len(labels) != len(wantLabels) {
		t.Errorf("labels = %v, want %v", labels, wantLabels)
	}
	for k, v := range wantLabels {
		if labels[k] != v {
			t.Errorf("labels[%q] = %v, want %v", k, labels[k], v)
		}
	}
	if g, _ := info["order"].(map[string]any); g["id"] != "order-1" {
		t.Errorf("group order = %v", info["order"])
	}

	errLine := lines[1]
	if errLine["severity"] != "ERROR" || errLine["message"] != "gateway failed" || errLine["err"] != "boom" {
		t.Errorf("error line = %v", errLine)
	}
	src, _ := errLine["logging.googleapis.com/sourceLocation"].(map[string]any)
	if !strings.HasSuffix(src["file"].(string), "log_test.go") || src["line"] == "" ||
		!strings.Contains(src["function"].(string), "TestHandlerCloudLoggingShape") {
		t.Errorf("sourceLocation = %v", src)
	}
}

func TestHandlerSeverities(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, &HandlerOptions{Level: slog.LevelDebug})
	log.Debug("d")
	log.Info("i")
	log.Warn("w")
	log.Error("e")
	log.Log(context.Background(), slog.LevelError+4, "above error")
	want := []string{"DEBUG", "INFO", "WARNING", "ERROR", "ERROR"}
	lines := decodeLines(t, &buf)
	if len(lines) != len(want) {
		t.Fatalf("got %d lines", len(lines))
	}
	for i, l := range lines {
		if l["severity"] != want[i] {
			t.Errorf("line %d severity = %v, want %s", i, l["severity"], want[i])
		}
	}
}

func TestHandlerLevelFilterAndNoTrace(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, nil)
	log.Debug("hidden")
	log.Info("shown")
	lines := decodeLines(t, &buf)
	if len(lines) != 1 || lines[0]["message"] != "shown" {
		t.Fatalf("lines = %v", lines)
	}
	for _, k := range []string{KeyTrace, KeySpanID, KeyTraceSampled, KeyLabels} {
		if _, ok := lines[0][k]; ok {
			t.Errorf("line without trace context has %q", k)
		}
	}
}

func TestHandlerProjectFromEnv(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "env-proj")
	var buf bytes.Buffer
	ctx := WithTrace(context.Background(), TraceContext{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"})
	NewLogger(&buf, nil).InfoContext(ctx, "x")
	l := decodeLines(t, &buf)[0]
	if l[KeyTrace] != "projects/env-proj/traces/4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace = %v", l[KeyTrace])
	}
	if _, ok := l[KeySpanID]; ok {
		t.Fatal("spanId written without a span")
	}

	t.Setenv("GOOGLE_CLOUD_PROJECT", "")
	buf.Reset()
	NewLogger(&buf, nil).InfoContext(ctx, "x")
	if l := decodeLines(t, &buf)[0]; l[KeyTrace] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace without project = %v", l[KeyTrace])
	}
}

func TestHandlerGroupsKeepSpecialFieldsTopLevel(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, &HandlerOptions{ProjectID: "p", AddSource: true}).
		With("a", 1).WithGroup("g").With("b", 2).WithGroup("h")
	ctx := WithTrace(context.Background(), NewTrace(true))
	log.InfoContext(ctx, "m", "c", 3)
	log.InfoContext(ctx, "empty inner group")
	lines := decodeLines(t, &buf)
	l := lines[0]
	if l["a"] != float64(1) {
		t.Errorf("a = %v", l["a"])
	}
	g, _ := l["g"].(map[string]any)
	h, _ := g["h"].(map[string]any)
	if g["b"] != float64(2) || h["c"] != float64(3) {
		t.Errorf("groups = %v", l)
	}
	if _, ok := l[KeyTrace]; !ok {
		t.Errorf("trace not at top level: %v", l)
	}
	if _, ok := l[KeySourceLocation]; !ok {
		t.Errorf("AddSource did not add sourceLocation to an info line: %v", l)
	}
	if g2, _ := lines[1]["g"].(map[string]any); g2["b"] != float64(2) || g2["h"] != nil {
		t.Errorf("empty group line = %v", lines[1])
	}
}

func TestWithLabelsDoesNotMutateParent(t *testing.T) {
	parent := WithLabel(context.Background(), "a", "1")
	child := WithLabel(parent, "b", "2")
	if got := LabelsFromContext(parent); len(got) != 1 || got["a"] != "1" {
		t.Fatalf("parent labels = %v", got)
	}
	if got := LabelsFromContext(child); len(got) != 2 || got["b"] != "2" {
		t.Fatalf("child labels = %v", got)
	}
}

func TestHandlerConcurrentLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.With("worker", i)
			for range 50 {
				l.Info("tick", "payload", strings.Repeat("x", 200))
			}
		}()
	}
	wg.Wait()
	if n := len(decodeLines(t, &buf)); n != 400 {
		t.Fatalf("got %d whole lines, want 400", n)
	}
}
