package retry

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxErrorBody is how many bytes of a response body NewHTTPStatusError keeps.
const MaxErrorBody = 4 << 10

// HTTPStatusError is an unexpected HTTP response status. Classify treats
// 408, 425, 429 and 5xx as transient and other 4xx as permanent. A positive
// RetryAfter is a floor for the next wait in Do.
type HTTPStatusError struct {
	StatusCode int
	// Body is the start of the response body, at most MaxErrorBody bytes.
	Body string
	// RetryAfter is the server's Retry-After, 0 when absent or invalid.
	RetryAfter time.Duration
}

// NewHTTPStatusError builds an HTTPStatusError from resp: it reads at most
// MaxErrorBody bytes of the body (it does not close it: the caller still
// owns resp.Body) and parses the Retry-After header, either delay-seconds or
// an HTTP date taken relative to the response's Date header (or the current
// time when there is none).
func NewHTTPStatusError(resp *http.Response) *HTTPStatusError {
	e := &HTTPStatusError{StatusCode: resp.StatusCode}
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
		e.Body = strings.ToValidUTF8(string(b), string(utf8.RuneError))
	}
	now := time.Now()
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		now = d
	}
	e.RetryAfter, _ = ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	return e
}

// Error returns the status and the start of the body.
func (e *HTTPStatusError) Error() string {
	msg := fmt.Sprintf("http status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	msg = strings.TrimSpace(msg)
	if body := strings.TrimSpace(e.Body); body != "" {
		const show = 512
		if len(body) > show {
			body = strings.ToValidUTF8(body[:show], "") + "..."
		}
		msg += ": " + body
	}
	return msg
}

// ParseRetryAfter parses a Retry-After header value, either delay-seconds or
// an HTTP date, relative to now. It reports false for an empty or malformed
// value. A date in the past gives 0, true.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		if secs > maxSecs {
			secs = maxSecs
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
