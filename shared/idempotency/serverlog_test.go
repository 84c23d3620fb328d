package idempotency_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/platform/shared/idempotency"
	"example.com/platform/shared/testing/pgtest"
)

// serverLogSince returns what the server logged after offset, up to and
// including a marker it logs now (so every earlier statement's lines are
// in).
func serverLogSince(t *testing.T, run func(sql string) error, path string, offset int64) string {
	t.Helper()
	marker := fmt.Sprintf("idempotency-log-marker-%d", offset)
	if err := run("DO $$ BEGIN RAISE LOG '" + marker + "'; END $$"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b[offset:])
	i := strings.Index(out, marker)
	if i < 0 {
		t.Fatalf("server log lacks the marker %q", marker)
	}
	return out[:i]
}

func logSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestDuplicatesLeaveNoErrorInServerLog sends a burst of duplicates (and
// payload mismatches and lease conflicts) through Transactional and
// Transactional, from many goroutines, and reads the server log: not
// one ERROR line. A division by zero afterwards proves the log is read
// correctly (its ERROR does show).
func TestDuplicatesLeaveNoErrorInServerLog(t *testing.T) {
	c, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	path := c.LogPath()
	if path == "" {
		t.Skip("DATABASE_URL is set: the server's log is not ours to read")
	}
	ctx := t.Context()
	pool, s := newStore(t)
	exec := func(sql string) error { _, err := pool.Exec(ctx, sql); return err }
	hash := idempotency.HashPayload([]byte("payload"))
	done := idempotency.KeyFor("payment", "//orders", "done")
	if out, err := s.Transactional(ctx, done, hash, effect("done", "first")); err != nil || out != idempotency.OutcomeProcessed {
		t.Fatalf("first delivery: %s, %v", out, err)
	}
	leased := idempotency.KeyFor("payment", "//orders", "leased")
	if _, err := s.Claim(ctx, leased, nil, time.Hour); err != nil {
		t.Fatal(err)
	}

	start := logSize(t, path)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for i := range 25 {
				var err error
				switch {
				case i%5 == 4:
					_, err = s.Transactional(ctx, done, idempotency.HashPayload([]byte("other")), effect("done", "tampered"))
					if err == nil {
						err = fmt.Errorf("a tampered delivery was accepted")
					} else {
						err = nil
					}
				case i%5 == 3:
					_, err = s.Transactional(ctx, leased, nil, effect("leased", "tx"))
					if err == nil {
						err = fmt.Errorf("a leased key was processed")
					} else {
						err = nil
					}
				default:
					var out idempotency.Outcome
					out, err = s.Transactional(ctx, done, hash, effect("done", "dup"))
					if err == nil && out != idempotency.OutcomeDuplicate {
						err = fmt.Errorf("outcome %s, want duplicate", out)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := effects(t, pool, "done"); n != 1 {
		t.Fatalf("%d effects of the processed event, want 1", n)
	}
	logged := serverLogSince(t, exec, path, start)
	for _, line := range strings.Split(logged, "\n") {
		if strings.Contains(line, "ERROR") || strings.Contains(line, "WARNING") {
			t.Fatalf("server log after 400 duplicate deliveries has %q", line)
		}
	}

	// The control: an error does reach the log we read.
	start = logSize(t, path)
	if err := exec("SELECT 1/0"); err == nil {
		t.Fatal("division by zero succeeded")
	}
	if logged := serverLogSince(t, exec, path, start); !strings.Contains(logged, "ERROR") || !strings.Contains(logged, "division by zero") {
		t.Fatalf("the control error is not in the server log: %q", logged)
	}
}
