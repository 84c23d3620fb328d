package observability

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"strconv"
)

// Cloud Logging special fields of a structured log line.
const (
	KeySeverity       = "severity"
	KeyMessage        = "message"
	KeyTime           = "time"
	KeyTrace          = "logging.googleapis.com/trace"
	KeySpanID         = "logging.googleapis.com/spanId"
	KeyTraceSampled   = "logging.googleapis.com/trace_sampled"
	KeyLabels         = "logging.googleapis.com/labels"
	KeySourceLocation = "logging.googleapis.com/sourceLocation"
)

// Label names the handler middleware puts on every log line of a delivery.
const (
	LabelFunction        = "function"
	LabelEventID         = "event_id"
	LabelEventType       = "event_type"
	LabelEventSource     = "event_source"
	LabelOrderingKey     = "ordering_key"
	LabelDeliveryAttempt = "delivery_attempt"
	LabelSubscription    = "subscription"
	LabelMessageID       = "message_id"
)

// HandlerOptions configures a Handler. The zero value is usable.
type HandlerOptions struct {
	// ProjectID builds the trace field "projects/<ProjectID>/traces/<id>".
	// Empty means the GOOGLE_CLOUD_PROJECT environment variable; when
	// that is empty too the field holds the bare trace id.
	ProjectID string
	// Level is the minimum level logged; nil means slog.LevelInfo.
	Level slog.Leveler
	// Labels are added to every line (for example function=payment);
	// labels from the context override them key by key.
	Labels map[string]string
	// AddSource adds the source location to every line. Lines at
	// slog.LevelError and above always carry it.
	AddSource bool
}

// Handler is a slog.Handler that writes one JSON object per line in
// Cloud Logging's structured format. Trace fields and labels come from the
// context passed to the logger's *Context methods (see WithTrace and
// WithLabels). It is safe for concurrent use; lines are written whole.
type Handler struct {
	inner     slog.Handler // JSON handler with key rewriting, no attrs
	project   string
	level     slog.Leveler
	labels    map[string]string
	addSource bool
	goas      []groupOrAttrs
}

type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

// NewHandler returns a Handler writing to w.
func NewHandler(w io.Writer, opts *HandlerOptions) *Handler {
	var o HandlerOptions
	if opts != nil {
		o = *opts
	}
	if o.ProjectID == "" {
		o.ProjectID = os.Getenv("GOOGLE_CLOUD_PROJECT")
	}
	if o.Level == nil {
		o.Level = slog.LevelInfo
	}
	return &Handler{
		inner: slog.NewJSONHandler(w, &slog.HandlerOptions{
			Level:       slog.Level(-1 << 20), // filtering happens in Enabled
			ReplaceAttr: replaceTopLevel,
		}),
		project:   o.ProjectID,
		level:     o.Level,
		labels:    maps.Clone(o.Labels),
		addSource: o.AddSource,
	}
}

// NewLogger is slog.New(NewHandler(w, opts)).
func NewLogger(w io.Writer, opts *HandlerOptions) *slog.Logger {
	return slog.New(NewHandler(w, opts))
}

// Severity maps a slog level to a Cloud Logging severity.
func Severity(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARNING"
	default:
		return "ERROR"
	}
}

func replaceTopLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(KeySeverity, Severity(l))
		}
	case slog.MessageKey:
		a.Key = KeyMessage
	}
	return a
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(groupOrAttrs{attrs: attrs})
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(groupOrAttrs{group: name})
}

func (h *Handler) with(g groupOrAttrs) *Handler {
	h2 := *h
	h2.goas = append(append([]groupOrAttrs(nil), h.goas...), g)
	return &h2
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, 0)

	if tc, ok := TraceFromContext(ctx); ok {
		trace := tc.TraceID
		if h.project != "" {
			trace = "projects/" + h.project + "/traces/" + tc.TraceID
		}
		out.AddAttrs(slog.String(KeyTrace, trace))
		if tc.SpanID != "" {
			out.AddAttrs(slog.String(KeySpanID, tc.SpanID))
		}
		out.AddAttrs(slog.Bool(KeyTraceSampled, tc.Sampled))
	}
	labels := h.labels
	if ctxLabels := LabelsFromContext(ctx); len(ctxLabels) > 0 {
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, ctxLabels)
	}
	if len(labels) > 0 {
		out.AddAttrs(slog.Any(KeyLabels, labels))
	}
	if r.PC != 0 && (h.addSource || r.Level >= slog.LevelError) {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		out.AddAttrs(slog.Any(KeySourceLocation, sourceLocation{
			File: f.File, Line: strconv.Itoa(f.Line), Function: f.Function,
		}))
	}

	// Rebuild the user's attributes nested in the groups opened by
	// WithGroup, so the special fields above stay at the top level.
	var cur []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		cur = append(cur, a)
		return true
	})
	for i := len(h.goas) - 1; i >= 0; i-- {
		g := h.goas[i]
		if g.group != "" {
			if len(cur) > 0 {
				cur = []slog.Attr{{Key: g.group, Value: slog.GroupValue(cur...)}}
			}
			continue
		}
		cur = append(append([]slog.Attr(nil), g.attrs...), cur...)
	}
	out.AddAttrs(cur...)
	return h.inner.Handle(ctx, out)
}

// sourceLocation is Cloud Logging's LogEntrySourceLocation (line is an
// int64, which the proto3 JSON mapping writes as a string).
type sourceLocation struct {
	File     string `json:"file"`
	Line     string `json:"line"`
	Function string `json:"function"`
}

type labelsKey struct{}

// WithLabels returns a copy of ctx whose labels are those already in ctx
// with labels merged over them. ctx's own map is never modified.
func WithLabels(ctx context.Context, labels map[string]string) context.Context {
	merged := maps.Clone(LabelsFromContext(ctx))
	if merged == nil {
		merged = make(map[string]string, len(labels))
	}
	maps.Copy(merged, labels)
	return context.WithValue(ctx, labelsKey{}, merged)
}

// WithLabel is WithLabels for one label.
func WithLabel(ctx context.Context, key, value string) context.Context {
	return WithLabels(ctx, map[string]string{key: value})
}

// LabelsFromContext returns the labels stored by WithLabels. The map must
// not be modified.
func LabelsFromContext(ctx context.Context) map[string]string {
	if ctx == nil {
		return nil
	}
	m, _ := ctx.Value(labelsKey{}).(map[string]string)
	return m
}
