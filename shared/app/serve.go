package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	"example.com/platform/shared/retry"
)

// Lazy serves the http.Handler that build returns, building it on the
// first request (a cold start must not dial databases before Cloud Run
// routes traffic, and tests import function packages without any
// environment). A configuration error (wrapping ErrConfig) is remembered:
// every request answers 500 with the one message that lists what is
// missing, and it is logged once. Any other build error (a database that
// is not reachable yet) answers 503 and the next request tries again, so
// Pub/Sub redelivers and nothing is lost.
type Lazy struct {
	build  func(ctx context.Context) (http.Handler, error)
	logger *slog.Logger

	mu      sync.Mutex
	h       http.Handler
	cfgErr  error
	logOnce sync.Once
}

// NewLazy returns a Lazy for build. logger may be nil (slog.Default()).
func NewLazy(build func(ctx context.Context) (http.Handler, error), logger *slog.Logger) *Lazy {
	if logger == nil {
		logger = slog.Default()
	}
	return &Lazy{build: build, logger: logger}
}

// Handler returns the built handler, building it if needed.
func (l *Lazy) Handler(ctx context.Context) (http.Handler, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h != nil {
		return l.h, nil
	}
	if l.cfgErr != nil {
		return nil, l.cfgErr
	}
	h, err := l.build(ctx)
	if err != nil {
		if errors.Is(err, ErrConfig) {
			l.cfgErr = err
		}
		return nil, err
	}
	l.h = h
	return h, nil
}

// Reset forgets the built handler (and a remembered configuration error),
// so the next request builds again from the environment as it is then. It
// exists for tests that serve a registered function more than once with
// different environments; the old handler's connections are not closed.
func (l *Lazy) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.h, l.cfgErr = nil, nil
	l.logOnce = sync.Once{}
}

// ServeHTTP implements http.Handler.
func (l *Lazy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, err := l.Handler(r.Context())
	if err != nil {
		if errors.Is(err, ErrConfig) {
			l.logOnce.Do(func() { l.logger.Error("cannot start: " + err.Error()) })
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		l.logger.Warn("start failed, will retry on the next request", append([]any{"error", err.Error()}, retry.LogAttrs(err)...)...)
		http.Error(w, "starting: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}
