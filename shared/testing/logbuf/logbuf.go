// Package logbuf is a bytes buffer for log output written from many
// goroutines (a slog handler, a child process's output) and read by the
// test.
package logbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects what is written to it. Its zero value is ready to use;
// all methods are safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail returns the last n lines written so far (all of them when there are
// fewer), for failure messages.
func (s *Buffer) Tail(n int) string {
	lines := strings.Split(s.String(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
