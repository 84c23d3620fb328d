package observability

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Header and attribute names that carry trace context.
const (
	// TraceparentHeader is the W3C Trace Context header, also used as the
	// Pub/Sub message attribute and CloudEvents extension name.
	TraceparentHeader = "traceparent"
	// TracestateHeader is the W3C vendor-specific trace state.
	TracestateHeader = "tracestate"
	// CloudTraceHeader is Google's legacy trace header
	// "TRACE_ID/SPAN_ID;o=OPTIONS" (span id in decimal).
	CloudTraceHeader = "X-Cloud-Trace-Context"
)

// Errors returned by the parsers; match them with errors.Is.
var (
	ErrInvalidTraceparent      = errors.New("invalid traceparent")
	ErrInvalidCloudTrace       = errors.New("invalid X-Cloud-Trace-Context")
	errAllZero                 = errors.New("must not be all zeros")
	errNotLowerHex             = errors.New("must be lower-case hex")
	flagSampled           byte = 0x01
)

// TraceContext is one W3C trace context: a trace id shared by every span
// of a trace, the id of the current span, and the sampling decision.
// The zero value is "no trace" (IsValid reports false).
type TraceContext struct {
	// TraceID is 32 lower-case hex characters, not all zero.
	TraceID string
	// SpanID is 16 lower-case hex characters, not all zero.
	SpanID string
	// Sampled is the W3C "sampled" flag (trace-flags bit 0).
	Sampled bool
	// State is the opaque tracestate value, forwarded unchanged.
	State string
}

// IsValid reports whether tc has a well-formed, non-zero trace and span id.
func (tc TraceContext) IsValid() bool {
	return checkHexID(tc.TraceID, 32) == nil && checkHexID(tc.SpanID, 16) == nil
}

// Traceparent formats tc as a version 00 traceparent value:
// "00-<trace id>-<span id>-<flags>". It returns "" when tc is not valid.
func (tc TraceContext) Traceparent() string {
	if !tc.IsValid() {
		return ""
	}
	flags := "00"
	if tc.Sampled {
		flags = "01"
	}
	return "00-" + tc.TraceID + "-" + tc.SpanID + "-" + flags
}

// String returns the traceparent form.
func (tc TraceContext) String() string { return tc.Traceparent() }

// ParseTraceparent parses a W3C traceparent value. It accepts version 00
// exactly as specified (55 characters) and, as the specification asks of
// parsers, a higher version other than ff whose first four fields have the
// version 00 layout. Every error wraps ErrInvalidTraceparent and says which
// field was wrong.
func ParseTraceparent(s string) (TraceContext, error) {
	fail := func(format string, args ...any) (TraceContext, error) {
		return TraceContext{}, fmt.Errorf("%w %q: %s", ErrInvalidTraceparent, s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return fail("empty")
	}
	if len(s) < 55 {
		return fail("want 55 characters (00-<32 hex>-<16 hex>-<2 hex>), got %d", len(s))
	}
	version := s[0:2]
	if err := checkHex(version); err != nil {
		return fail("version %s", err)
	}
	if version == "ff" {
		return fail("version ff is forbidden")
	}
	if version == "00" && len(s) != 55 {
		return fail("version 00 must be exactly 55 characters, got %d", len(s))
	}
	if len(s) > 55 && s[55] != '-' {
		return fail("unexpected data after trace-flags")
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return fail("fields must be separated by '-'")
	}
	tc := TraceContext{TraceID: s[3:35], SpanID: s[36:52]}
	if err := checkHexID(tc.TraceID, 32); err != nil {
		return fail("trace-id %s", err)
	}
	if err := checkHexID(tc.SpanID, 16); err != nil {
		return fail("parent-id %s", err)
	}
	flags := s[53:55]
	if err := checkHex(flags); err != nil {
		return fail("trace-flags %s", err)
	}
	b, _ := hex.DecodeString(flags)
	tc.Sampled = b[0]&flagSampled != 0
	return tc, nil
}

// ParseCloudTraceContext parses Google's X-Cloud-Trace-Context header,
// "TRACE_ID/SPAN_ID;o=OPTIONS", where TRACE_ID is 32 hex characters,
// SPAN_ID is an unsigned decimal 64-bit integer and o=1 means sampled.
// The span id and options are optional ("TRACE_ID" alone is accepted;
// the span id is then empty and IsValid reports false, but the trace id is
// still usable for log correlation). Every error wraps ErrInvalidCloudTrace.
func ParseCloudTraceContext(s string) (TraceContext, error) {
	fail := func(format string, args ...any) (TraceContext, error) {
		return TraceContext{}, fmt.Errorf("%w %q: %s", ErrInvalidCloudTrace, s, fmt.Sprintf(format, args...))
	}
	rest := s
	var opts string
	if i := strings.IndexByte(rest, ';'); i >= 0 {
		rest, opts = rest[:i], rest[i+1:]
	}
	traceID, spanPart, hasSpan := strings.Cut(rest, "/")
	traceID = strings.ToLower(traceID)
	if err := checkHexID(traceID, 32); err != nil {
		return fail("trace id %s", err)
	}
	tc := TraceContext{TraceID: traceID}
	if hasSpan && spanPart != "" {
		n, err := strconv.ParseUint(spanPart, 10, 64)
		if err != nil {
			return fail("span id must be an unsigned decimal 64-bit integer")
		}
		if n != 0 {
			tc.SpanID = fmt.Sprintf("%016x", n)
		}
	}
	if opts != "" {
		switch opts {
		case "o=1":
			tc.Sampled = true
		case "o=0":
		default:
			return fail("options must be o=0 or o=1")
		}
	}
	return tc, nil
}

// CloudTraceContext formats tc as an X-Cloud-Trace-Context value.
func (tc TraceContext) CloudTraceContext() string {
	if !tc.IsValid() {
		return ""
	}
	span, _ := strconv.ParseUint(tc.SpanID, 16, 64)
	o := "0"
	if tc.Sampled {
		o = "1"
	}
	return tc.TraceID + "/" + strconv.FormatUint(span, 10) + ";o=" + o
}

// TraceFromHeader reads the trace context of an incoming HTTP request:
// a valid traceparent (with its tracestate) wins; otherwise
// X-Cloud-Trace-Context. ok is false when neither is present and valid.
func TraceFromHeader(h http.Header) (tc TraceContext, ok bool) {
	if v := h.Get(TraceparentHeader); v != "" {
		if tc, err := ParseTraceparent(v); err == nil {
			tc.State = h.Get(TracestateHeader)
			return tc, true
		}
	}
	if v := h.Get(CloudTraceHeader); v != "" {
		if tc, err := ParseCloudTraceContext(v); err == nil {
			return tc, true
		}
	}
	return TraceContext{}, false
}

// TraceFromCarrier reads a traceparent and tracestate through get, which
// looks a key up in any carrier (message attributes, CloudEvents
// extensions). ok is false when there is no valid traceparent.
func TraceFromCarrier(get func(key string) string) (tc TraceContext, ok bool) {
	tc, err := ParseTraceparent(get(TraceparentHeader))
	if err != nil {
		return TraceContext{}, false
	}
	tc.State = get(TracestateHeader)
	return tc, true
}

// InjectCarrier writes tc's traceparent and, when set, tracestate through
// set. It writes nothing when tc is not valid.
func InjectCarrier(tc TraceContext, set func(key, value string)) {
	if !tc.IsValid() {
		return
	}
	set(TraceparentHeader, tc.Traceparent())
	if tc.State != "" {
		set(TracestateHeader, tc.State)
	}
}

// NewChildSpan returns a context for a new span below parent: the same
// trace id, sampling decision and tracestate, and a fresh random span id.
// When parent has no valid trace id it starts a new, sampled trace, so an
// outgoing message always carries trace context.
func NewChildSpan(parent TraceContext) TraceContext {
	if checkHexID(parent.TraceID, 32) != nil {
		return NewTrace(true)
	}
	return TraceContext{TraceID: parent.TraceID, SpanID: randomHex(8), Sampled: parent.Sampled, State: parent.State}
}

// NewTrace starts a new trace with random trace and span ids.
func NewTrace(sampled bool) TraceContext {
	return TraceContext{TraceID: randomHex(16), SpanID: randomHex(8), Sampled: sampled}
}

type traceKey struct{}

// WithTrace returns a copy of ctx carrying tc. The JSON log handler and
// outgoing event encoding read it.
func WithTrace(ctx context.Context, tc TraceContext) context.Context {
	return context.WithValue(ctx, traceKey{}, tc)
}

// TraceFromContext returns the trace context stored by WithTrace.
func TraceFromContext(ctx context.Context) (TraceContext, bool) {
	if ctx == nil {
		return TraceContext{}, false
	}
	tc, ok := ctx.Value(traceKey{}).(TraceContext)
	return tc, ok && tc.TraceID != ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	for {
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
		for _, c := range b {
			if c != 0 {
				return hex.EncodeToString(b)
			}
		}
	}
}

func checkHex(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errNotLowerHex
		}
	}
	return nil
}

func checkHexID(s string, n int) error {
	if len(s) != n {
		return fmt.Errorf("must be %d hex characters, got %d", n, len(s))
	}
	if err := checkHex(s); err != nil {
		return err
	}
	if strings.Count(s, "0") == n {
		return errAllZero
	}
	return nil
}
