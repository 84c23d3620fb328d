package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestRolledBackWritesAreNeverPublished(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.WriteMany(ctx, tx, []outbox.Entry{entry("a", 0), entry("a", 1), entry("", 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.Write(ctx, tx, topic, msg("b", 0)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	e.write(t, entry("c", 0))

	r := e.relay(t, outbox.Config{Logger: quiet})
	st, err := r.PublishPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != 1 || st.Claimed != 1 {
		t.Fatalf("stats %+v, want only the committed row", st)
	}
	got := e.published(t)
	if len(got) != 1 || !slices.Equal(got["c"], []int{0}) {
		t.Fatalf("published %v, want only c#0", got)
	}
	if st, err := r.PublishPending(ctx); err != nil || st != (outbox.Stats{}) {
		t.Fatalf("second pass: %+v, %v; want nothing to do", st, err)
	}
}

func TestRelayPublishesEveryKeyInOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keys := []string{"a", "b", "c", ""}
	next := map[string]int{}
	for range 6 { // six transactions of interleaved keys
		var entries []outbox.Entry
		for i := range 7 {
			k := keys[(i*3+len(next))%len(keys)]
			entries = append(entries, entry(k, next[k]))
			next[k]++
		}
		e.write(t, entries...)
	}
	// A small batch forces many passes, each resuming the keys.
	r := e.relay(t, outbox.Config{Logger: quiet, BatchSize: 5, Concurrency: 3})
	total := 0
	for {
		st, err := r.PublishPending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Claimed > 5 || st.Failed != 0 || st.Held != 0 {
			t.Fatalf("pass stats %+v", st)
		}
		total += st.Published
		if st.Claimed == 0 {
			break
		}
	}
	if total != 42 || e.pending(t) != 0 {
		t.Fatalf("published %d, %d pending; want 42, 0", total, e.pending(t))
	}
	got := e.published(t)
	for _, k := range []string{"a", "b", "c"} {
		if !slices.Equal(got[k], seqs(0, next[k])) {
			t.Errorf("key %q published %v, want 0..%d in order", k, got[k], next[k]-1)
		}
	}
	noKey := slices.Clone(got[""])
	slices.Sort(noKey)
	if !slices.Equal(noKey, seqs(0, next[""])) {
		t.Errorf("key-less rows published %v, want each of 0..%d once", got[""], next[""]-1)
	}
	// Data and attributes survive the round trip; rows are marked.
	m := e.ps.Server.Messages()[0]
	if string(m.Data) != fmt.Sprintf("%s#%s", m.OrderingKey, m.Attributes["seq"]) {
		t.Errorf("message data %q attrs %v", m.Data, m.Attributes)
	}
	var unmarked int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL OR attempts <> 1 OR last_error IS NOT NULL`).Scan(&unmarked); err != nil || unmarked != 0 {
		t.Fatalf("%d rows not marked published once (%v)", unmarked, err)
	}
}

func TestFailedPublishPausesOnlyItsKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var entries []outbox.Entry
	for i := range 5 {
		for _, k := range []string{"a", "b", "c"} {
			entries = append(entries, entry(k, i))
		}
		entries = append(entries, entry("", i))
	}
	e.write(t, entries...)
	fail := newFailOnce(e.pub, "a#2")
	r := e.relay(t, outbox.Config{Logger: quiet, Publisher: fail})

	st, err := r.PublishPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != 17 || st.Failed != 1 || st.Held != 2 {
		t.Fatalf("first pass %+v, want 17 published, 1 failed, 2 held", st)
	}
	got := e.published(t)
	if !slices.Equal(got["a"], []int{0, 1}) || !slices.Equal(got["b"], seqs(0, 5)) || !slices.Equal(got["c"], seqs(0, 5)) || len(got[""]) != 5 {
		t.Fatalf("after the failure: %v", got)
	}
	var attempts int
	var lastErr string
	if err := e.pool.QueryRow(ctx, `SELECT attempts, last_error FROM outbox WHERE data = 'a#2'`).Scan(&attempts, &lastErr); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 || lastErr != "injected failure for a#2" {
		t.Fatalf("failed row: attempts %d, last_error %q", attempts, lastErr)
	}
	if st, err := r.PublishPending(ctx); err != nil || st.Claimed != 0 {
		t.Fatalf("pass during the default backoff %+v, %v; want nothing claimed", st, err)
	}

	e.retryNow(t)
	st, err = r.PublishPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != 3 || st.Failed != 0 {
		t.Fatalf("second pass %+v, want the 3 rows of a", st)
	}
	if got := e.published(t); !slices.Equal(got["a"], seqs(0, 5)) {
		t.Fatalf("key a published %v, want 0..4 in order", got["a"])
	}
	if e.pending(t) != 0 {
		t.Fatalf("%d rows still pending", e.pending(t))
	}
}

// TestClientFailurePausesKeyAndResumes fails inside the real Pub/Sub client
// (the topic does not exist yet), which pauses the key client-side too.
func TestClientFailurePausesKeyAndResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.write(t,
		outbox.Entry{Topic: "late", Message: msg("k", 0)},
		entry("k", 0), // same key on another topic: a different ordering scope
		outbox.Entry{Topic: "late", Message: msg("k", 1)},
		entry("k", 1),
	)
	r := e.relay(t, outbox.Config{Logger: quiet})
	st, err := r.PublishPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != 2 || st.Failed != 1 || st.Held != 1 {
		t.Fatalf("first pass %+v", st)
	}
	e.ps.CreateTopic(t, "late")
	e.retryNow(t)
	if st, err = r.PublishPending(ctx); err != nil || st.Published != 2 {
		t.Fatalf("second pass %+v, %v", st, err)
	}
	var late []string
	for _, m := range e.ps.Server.Messages() {
		if m.Topic == "projects/test-project/topics/late" {
			late = append(late, string(m.Data))
		}
	}
	if !slices.Equal(late, []string{"k#0", "k#1"}) {
		t.Fatalf("late topic got %v", late)
	}
}

func TestRetryBackoffDelaysTheKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.write(t, entry("a", 0), entry("a", 1), entry("b", 0))
	r := e.relay(t, outbox.Config{Logger: quiet, Publisher: newFailOnce(e.pub, "a#0"), RetryBackoff: time.Hour})
	if st, err := r.PublishPending(ctx); err != nil || st.Failed != 1 || st.Published != 1 {
		t.Fatalf("first pass %+v, %v", st, err)
	}
	if st, err := r.PublishPending(ctx); err != nil || st.Claimed != 0 {
		t.Fatalf("pass during backoff %+v, %v; want nothing claimed", st, err)
	}
	var wait time.Duration
	var secs float64
	if err := e.pool.QueryRow(ctx, `SELECT extract(epoch FROM next_attempt_at - now()) FROM outbox WHERE data = 'a#0'`).Scan(&secs); err != nil {
		t.Fatal(err)
	}
	if wait = time.Duration(secs * float64(time.Second)); wait < 59*time.Minute || wait > time.Hour {
		t.Fatalf("next attempt in %v, want about 1h", wait)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE outbox SET next_attempt_at = now() WHERE data = 'a#0'`); err != nil {
		t.Fatal(err)
	}
	if st, err := r.PublishPending(ctx); err != nil || st.Published != 2 {
		t.Fatalf("pass after backoff %+v, %v", st, err)
	}
	if got := e.published(t); !slices.Equal(got["a"], []int{0, 1}) {
		t.Fatalf("key a published %v", got["a"])
	}
}

// blockingPublisher blocks the first publish of key until release is
// closed, after signalling entered. Any other publish of key while the
// first one is blocked fails and is counted as a violation.
type blockingPublisher struct {
	next       messaging.Publisher
	key        string
	entered    chan struct{}
	release    chan struct{}
	state      atomic.Int32 // 0 not yet, 1 blocked, 2 released
	violations atomic.Int32
}

func (b *blockingPublisher) Publish(ctx context.Context, topic string, m messaging.Message) (string, error) {
	if m.OrderingKey == b.key {
		if b.state.CompareAndSwap(0, 1) {
			close(b.entered)
			<-b.release
			b.state.Store(2)
		} else if b.state.Load() == 1 {
			b.violations.Add(1)
			return "", fmt.Errorf("publish of %s while another pass owns key %s", m.Data, b.key)
		}
	}
	return b.next.Publish(ctx, topic, m)
}

// TestKeyOwnedByOnePass: while one relay is publishing key k, another
// relay and PublishAfterCommit publish other keys but nothing of k.
func TestKeyOwnedByOnePass(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kIDs := e.write(t, entry("k", 0), entry("k", 1), entry("k", 2))

	block := &blockingPublisher{next: e.pub, key: "k", entered: make(chan struct{}), release: make(chan struct{})}
	release := sync.OnceFunc(func() { close(block.release) })
	t.Cleanup(release) // before the pool closes, even if the test fails
	a := e.relay(t, outbox.Config{Logger: quiet, Publisher: block})
	type result struct {
		st  outbox.Stats
		err error
	}
	aDone := make(chan result, 1)
	go func() {
		st, err := a.PublishPending(ctx)
		aDone <- result{st, err}
	}()
	<-block.entered // a owns k and is publishing k#0

	e.write(t, entry("k", 3), entry("l", 0), entry("l", 1))
	b := e.relay(t, outbox.Config{Logger: quiet, Publisher: block})
	st, err := b.PublishPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != 2 || st.Claimed != 2 || st.Failed != 0 {
		t.Fatalf("second relay %+v, want only l#0 and l#1", st)
	}
	st, err = b.PublishAfterCommit(ctx, kIDs...)
	if err != nil || st.Published != 0 || st.Skipped != 3 {
		t.Fatalf("PublishAfterCommit of an owned key: %+v, %v", st, err)
	}
	if got := e.published(t); len(got["k"]) != 0 || !slices.Equal(got["l"], []int{0, 1}) {
		t.Fatalf("while k is owned: %v", got)
	}

	if n := block.violations.Load(); n > 0 {
		t.Fatalf("%d publishes of k while the first relay owned it", n)
	}
	release()
	res := <-aDone
	if res.err != nil || res.st.Published != 3 {
		t.Fatalf("first relay %+v, %v; want k#0..2", res.st, res.err)
	}
	if st, err := b.PublishPending(ctx); err != nil || st.Published != 1 {
		t.Fatalf("after release %+v, %v; want k#3", st, err)
	}
	if got := e.published(t); !slices.Equal(got["k"], seqs(0, 4)) {
		t.Fatalf("key k published %v", got["k"])
	}
}

// orderGuard wraps a publisher and records a violation when two publishes
// of one ordering key overlap, or a key's seq does not follow the last
// published one.
type orderGuard struct {
	next       messaging.Publisher
	mu         sync.Mutex
	inFlight   map[string]bool
	last       map[string]int
	violations []string
	count      atomic.Int64
}

func (g *orderGuard) Publish(ctx context.Context, topic string, m messaging.Message) (string, error) {
	k := m.OrderingKey
	seq, _ := strconv.Atoi(m.Attributes["seq"])
	g.mu.Lock()
	if g.inFlight[k] {
		g.violations = append(g.violations, fmt.Sprintf("key %s: concurrent publishes", k))
	}
	if want := g.last[k] + 1; seq != want {
		g.violations = append(g.violations, fmt.Sprintf("key %s: published seq %d after %d", k, seq, g.last[k]))
	}
	g.inFlight[k] = true
	g.mu.Unlock()
	id, err := g.next.Publish(ctx, topic, m)
	g.mu.Lock()
	g.inFlight[k] = false
	if err == nil {
		g.last[k] = seq
	}
	g.mu.Unlock()
	g.count.Add(1)
	return id, err
}

func TestConcurrentRelaysPublishEachRowOnceInOrder(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const rows, nkeys, relays = 500, 20, 4
	next := map[string]int{}
	var batch []outbox.Entry
	for i := range rows {
		k := fmt.Sprintf("key-%02d", (i*7+i/13)%nkeys)
		batch = append(batch, entry(k, next[k]))
		next[k]++
		if len(batch) == 10 {
			e.write(t, batch...)
			batch = nil
		}
	}
	guard := &orderGuard{next: e.pub, inFlight: map[string]bool{}, last: map[string]int{}}
	for k := range next {
		guard.last[k] = -1
	}
	var (
		wg        sync.WaitGroup
		published atomic.Int64
	)
	for range relays {
		r := e.relay(t, outbox.Config{Logger: quiet, Publisher: guard, BatchSize: 16, Concurrency: 4})
		wg.Go(func() {
			for ctx.Err() == nil {
				st, err := r.PublishPending(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				published.Add(int64(st.Published))
				if st.Claimed == 0 {
					status, err := r.Status(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					if len(status) == 0 {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if len(guard.violations) > 0 {
		t.Fatalf("%d ordering violations, first: %v", len(guard.violations), guard.violations[:min(5, len(guard.violations))])
	}
	if published.Load() != rows || guard.count.Load() != rows {
		t.Fatalf("relays published %d rows with %d publish calls, want %d", published.Load(), guard.count.Load(), rows)
	}
	got := e.published(t)
	n := 0
	for k, want := range next {
		if !slices.Equal(got[k], seqs(0, want)) {
			t.Errorf("key %s published %v, want 0..%d once each in order", k, got[k], want-1)
		}
		n += len(got[k])
	}
	if n != rows || len(e.ps.Server.Messages()) != rows {
		t.Fatalf("pstest holds %d messages, want %d", len(e.ps.Server.Messages()), rows)
	}
}

// TestCrashBetweenPublishAndMark: a relay publishes rows and dies before
// it records them (its publisher never returns for the last one and its
// lease is not renewed). The rows stay leased: no other relay takes the
// key until the lease expires; then the next relay publishes them again,
// in order (at-least-once).
func TestCrashBetweenPublishAndMark(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.write(t, entry("k", 0), entry("k", 1), entry("k", 2))
	dead := make(chan struct{})
	entered := make(chan struct{})
	t.Cleanup(func() { close(dead) })
	var once sync.Once
	crashing := messaging.PublisherFunc(func(ctx context.Context, topic string, m messaging.Message) (string, error) {
		id, err := e.pub.Publish(ctx, topic, m)
		if m.Attributes["seq"] == "2" {
			once.Do(func() { close(entered) })
			<-dead // the process is gone: nothing after this happens
		}
		return id, err
	})
	r := e.relay(t, outbox.Config{Logger: quiet, Publisher: crashing, Lease: time.Hour})
	crashCtx, crash := context.WithCancel(ctx)
	go r.PublishPending(crashCtx) //nolint:errcheck // it never returns before the test ends
	<-entered
	crash()
	e.write(t, entry("k", 3), entry("j", 0))

	r2 := e.relay(t, outbox.Config{Logger: quiet})
	if st, err := r2.PublishPending(ctx); err != nil || st.Published != 1 || st.Claimed != 1 {
		t.Fatalf("pass during the lease %+v, %v; want only j#0", st, err)
	}
	// The lease runs out (the dead relay does not renew it).
	if _, err := e.pool.Exec(ctx, `UPDATE outbox SET lease_until = now() - interval '1 second' WHERE lease_until IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	st, err := r2.PublishPending(ctx)
	if err != nil || st.Published < 1 {
		t.Fatalf("recovery pass %+v, %v", st, err)
	}
	if e.pending(t) != 0 {
		t.Fatalf("%d rows pending after recovery", e.pending(t))
	}
	got := e.published(t)["k"]
	// The dead relay published k#0..2; it may have marked k#1 (a row
	// after the head is marked as its acknowledgement arrives), never the
	// head k#0 (marked when the claim settles) nor k#2. The next relay
	// publishes what is unmarked again, in id order, then k#3.
	again := got[min(3, len(got)):]
	if len(got) < 3 || !slices.Equal(got[:3], []int{0, 1, 2}) || !slices.IsSorted(again) ||
		len(again) < 3 || again[0] != 0 || !slices.Contains(again, 2) || again[len(again)-1] != 3 {
		t.Fatalf("key k published %v, want 0,1,2 then again the unmarked suffix in order", got)
	}
}

func TestPublishAfterCommit(t *testing.T) {
	t.Run("publishes just these rows in order", func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		e.write(t, entry("other", 0))
		ids := e.write(t, entry("k", 0), entry("k", 1), entry("", 0), entry("k", 2))
		r := e.relay(t, outbox.Config{Logger: quiet})
		st, err := r.PublishAfterCommit(ctx, ids...)
		if err != nil || st.Published != 4 || st.Skipped != 0 {
			t.Fatalf("%+v, %v", st, err)
		}
		got := e.published(t)
		if !slices.Equal(got["k"], seqs(0, 3)) || len(got[""]) != 1 || len(got["other"]) != 0 {
			t.Fatalf("published %v", got)
		}
		if st, err := r.PublishAfterCommit(ctx, ids...); err != nil || st.Published != 0 || st.Skipped != 4 {
			t.Fatalf("again: %+v, %v; want all skipped as published", st, err)
		}
		if st, err := r.PublishPending(ctx); err != nil || st.Published != 1 {
			t.Fatalf("relay %+v, %v; want only other#0", st, err)
		}
	})
	t.Run("does not jump ahead of an older pending row", func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		e.write(t, entry("k", 0)) // committed, not yet published
		ids := e.write(t, entry("k", 1), entry("k", 2), entry("j", 0))
		r := e.relay(t, outbox.Config{Logger: quiet})
		st, err := r.PublishAfterCommit(ctx, ids...)
		if err != nil || st.Published != 1 || st.Skipped != 2 {
			t.Fatalf("%+v, %v; want j#0 published and k#1, k#2 skipped", st, err)
		}
		if got := e.published(t); len(got["k"]) != 0 {
			t.Fatalf("key k published %v before k#0", got["k"])
		}
		if st, err := r.PublishPending(ctx); err != nil || st.Published != 3 {
			t.Fatalf("relay %+v, %v", st, err)
		}
		if got := e.published(t); !slices.Equal(got["k"], seqs(0, 3)) {
			t.Fatalf("key k published %v", got["k"])
		}
	})
	t.Run("a failure leaves the rest of the key to the relay", func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		ids := e.write(t, entry("k", 0), entry("k", 1), entry("k", 2), entry("m", 0))
		r := e.relay(t, outbox.Config{Logger: quiet, Publisher: newFailOnce(e.pub, "k#1")})
		st, err := r.PublishAfterCommit(ctx, ids...)
		if err != nil || st.Published != 2 || st.Failed != 1 || st.Held != 1 {
			t.Fatalf("%+v, %v", st, err)
		}
		if got := e.published(t); !slices.Equal(got["k"], []int{0}) || len(got["m"]) != 1 {
			t.Fatalf("published %v", got)
		}
		e.retryNow(t)
		if st, err := r.PublishPending(ctx); err != nil || st.Published != 2 {
			t.Fatalf("relay %+v, %v", st, err)
		}
		if got := e.published(t); !slices.Equal(got["k"], seqs(0, 3)) {
			t.Fatalf("key k published %v", got["k"])
		}
	})
	// One id (what a handler passes after each event) takes its own claim
	// statement: the same rules.
	t.Run("one row: published once, never ahead of its key, not while leased or parked", func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		r := e.relay(t, outbox.Config{Logger: quiet})
		older := e.write(t, entry("k", 0))
		id := e.write(t, entry("k", 1))
		if st, err := r.PublishAfterCommit(ctx, id...); err != nil || st.Published != 0 || st.Skipped != 1 {
			t.Fatalf("behind k#0: %+v, %v", st, err)
		}
		if st, err := r.PublishAfterCommit(ctx, older...); err != nil || st.Published != 1 {
			t.Fatalf("k#0: %+v, %v", st, err)
		}
		if st, err := r.PublishAfterCommit(ctx, id...); err != nil || st.Published != 1 {
			t.Fatalf("k#1 after k#0: %+v, %v", st, err)
		}
		if st, err := r.PublishAfterCommit(ctx, id...); err != nil || st.Published != 0 || st.Skipped != 1 {
			t.Fatalf("again: %+v, %v", st, err)
		}
		if got := e.published(t); !slices.Equal(got["k"], seqs(0, 2)) {
			t.Fatalf("key k published %v", got["k"])
		}
		parked := e.write(t, entry("p", 0))
		if err := outbox.Park(ctx, e.pool, parked[0]); err != nil {
			t.Fatal(err)
		}
		leased := e.write(t, entry("", 0))
		if _, err := e.pool.Exec(ctx, `UPDATE outbox SET claimed_by = 'other', lease_until = now() + interval '1 minute' WHERE id = $1`, leased[0]); err != nil {
			t.Fatal(err)
		}
		for _, ids := range [][]int64{parked, leased} {
			if st, err := r.PublishAfterCommit(ctx, ids...); err != nil || st.Published != 0 || st.Skipped != 1 {
				t.Fatalf("parked or leased row %v: %+v, %v", ids, st, err)
			}
		}
	})
	t.Run("rows between the given ones are published in order", func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		var ids []int64
		// Two transactions interleave their rows of k (serially, as the
		// key lock requires): ours is k#0 and k#2, theirs k#1.
		for _, s := range []int{0, 1, 2} {
			id := e.write(t, entry("k", s))
			if s != 1 {
				ids = append(ids, id...)
			}
		}
		r := e.relay(t, outbox.Config{Logger: quiet})
		st, err := r.PublishAfterCommit(ctx, ids...)
		if err != nil || st.Published != 3 || st.Skipped != 0 {
			t.Fatalf("%+v, %v", st, err)
		}
		if got := e.published(t); !slices.Equal(got["k"], seqs(0, 3)) {
			t.Fatalf("key k published %v", got["k"])
		}
	})
}

func TestRunPublishesUntilCancelled(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan string, 100)
	pub := messaging.PublisherFunc(func(ctx context.Context, topic string, m messaging.Message) (string, error) {
		id, err := e.pub.Publish(ctx, topic, m)
		if err == nil {
			seen <- string(m.Data)
		}
		return id, err
	})
	r := e.relay(t, outbox.Config{Logger: quiet, Publisher: pub, BatchSize: 2})
	if err := r.Run(ctx, 0); !errors.Is(err, outbox.ErrInvalidInterval) {
		t.Fatalf("Run with interval 0: %v", err)
	}
	e.write(t, entry("k", 0), entry("k", 1), entry("k", 2)) // drained at once: full batches
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx, 10*time.Millisecond) }()
	wantNext := func(want string) {
		t.Helper()
		select {
		case got := <-seen:
			if got != want {
				t.Fatalf("published %s, want %s", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out waiting for %s", want)
		}
	}
	wantNext("k#0")
	wantNext("k#1")
	wantNext("k#2")
	e.write(t, entry("k", 3)) // picked up by a later tick
	wantNext("k#3")
	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
}

func TestConfigValidate(t *testing.T) {
	e := newEnv(t)
	base := outbox.Config{Pool: e.pool, Publisher: e.pub}
	cases := []struct {
		name string
		edit func(*outbox.Config)
		want error
	}{
		{"ok", func(*outbox.Config) {}, nil},
		{"no pool", func(c *outbox.Config) { c.Pool = nil }, outbox.ErrNoPool},
		{"no publisher", func(c *outbox.Config) { c.Publisher = nil }, outbox.ErrNoPublisher},
		{"batch", func(c *outbox.Config) { c.BatchSize = -1 }, outbox.ErrInvalidBatchSize},
		{"concurrency", func(c *outbox.Config) { c.Concurrency = -1 }, outbox.ErrInvalidConcurrency},
		{"timeout", func(c *outbox.Config) { c.PublishTimeout = -time.Second }, outbox.ErrInvalidTimeout},
		{"backoff", func(c *outbox.Config) { c.MaxRetryBackoff = -time.Second }, outbox.ErrInvalidBackoff},
		{"in flight", func(c *outbox.Config) { c.MaxInFlight = -1 }, outbox.ErrInvalidInFlight},
		{"in flight bytes", func(c *outbox.Config) { c.MaxInFlightBytes = -1 }, outbox.ErrInvalidInFlight},
		{"lease", func(c *outbox.Config) { c.Lease = -time.Second }, outbox.ErrInvalidLease},
		{"stuck", func(c *outbox.Config) { c.StuckAfter = -time.Second }, outbox.ErrInvalidLease},
	}
	for _, c := range cases {
		cfg := base
		c.edit(&cfg)
		if err := cfg.Validate(); !errors.Is(err, c.want) {
			t.Errorf("%s: Validate = %v, want %v", c.name, err, c.want)
		}
		if _, err := outbox.NewRelay(cfg); !errors.Is(err, c.want) {
			t.Errorf("%s: NewRelay = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.write(t,
		outbox.Entry{Topic: "a", Message: msg("x", 0)},
		outbox.Entry{Topic: "a", Message: msg("y", 0)},
		outbox.Entry{Topic: "a", Message: msg("y", 1)},
		entry("p", 0),
	)
	if _, err := e.pool.Exec(ctx, `UPDATE outbox SET created_at = now() - interval '1 hour' WHERE topic = 'a' AND ordering_key = 'x'`); err != nil {
		t.Fatal(err)
	}
	r := e.relay(t, outbox.Config{Logger: quiet})
	if st, err := r.PublishPending(ctx); err != nil || st.Published != 1 || st.Failed != 2 {
		// Topic a does not exist in pstest: x#0 and y#0 fail, y#1 is held.
		t.Fatalf("pass %+v, %v", st, err)
	}
	e.write(t, outbox.Entry{Topic: "b", Message: msg("z", 0)})

	status, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(status) != 2 || status[0].Topic != "a" || status[1].Topic != "b" {
		t.Fatalf("status %+v, want topics a and b (order.created has nothing pending)", status)
	}
	a, b := status[0], status[1]
	if a.Pending != 3 || a.Failing != 2 || a.OldestAge < time.Hour || a.OldestAge > time.Hour+time.Minute || a.LastError == "" {
		t.Errorf("topic a: %+v", a)
	}
	if b.Pending != 1 || b.Failing != 0 || b.OldestAge < 0 || b.OldestAge > time.Minute || b.LastError != "" {
		t.Errorf("topic b: %+v", b)
	}
}

func TestPurgePublished(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.write(t, entry("k", 0), entry("k", 1), entry("k", 2))
	r := e.relay(t, outbox.Config{Logger: quiet})
	if _, err := r.PublishPending(ctx); err != nil {
		t.Fatal(err)
	}
	e.write(t, entry("k", 3)) // pending, and made old below: never purged
	if _, err := e.pool.Exec(ctx, `UPDATE outbox SET published_at = now() - interval '2 days' WHERE data IN ('k#0', 'k#1')`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE outbox SET created_at = now() - interval '9 days'`); err != nil {
		t.Fatal(err)
	}
	n, err := r.PurgePublished(ctx, 24*time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("purged %d, %v; want 2", n, err)
	}
	rows, err := e.pool.Query(ctx, `SELECT convert_from(data, 'UTF8') FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(left, []string{"k#2", "k#3"}) {
		t.Fatalf("left %v, %v", left, err)
	}
	if _, err := r.PurgePublished(ctx, -time.Second); !errors.Is(err, outbox.ErrInvalidRetention) {
		t.Fatalf("negative age: %v", err)
	}
}

// TestInFlightIsBounded: however many keys are ready, no more than
// MaxInFlight messages (and MaxInFlightBytes) are handed to the publisher
// and unacknowledged at once, and everything is still published once, in
// order.
func TestInFlightIsBounded(t *testing.T) {
	for _, c := range []struct {
		name           string
		maxN, maxBytes int
		wantPeak       int64
	}{
		{"messages", 4, 0, 4},
		{"bytes", 0, 21, 3}, // each message is 7 bytes: data 2, key 3, attributes 2
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			var entries []outbox.Entry
			for i := range 60 {
				entries = append(entries, outbox.Entry{Topic: topic, Message: messaging.Message{
					Data: []byte(fmt.Sprintf("%02d", i)), OrderingKey: fmt.Sprintf("k%02d", i%20), Attributes: map[string]string{"s": "1"}}})
			}
			e.write(t, entries...)
			var inFlight, peak atomic.Int64
			pub := messaging.PublisherFunc(func(ctx context.Context, topic string, m messaging.Message) (string, error) {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				return e.pub.Publish(ctx, topic, m)
			})
			r := e.relay(t, outbox.Config{Logger: quiet, Publisher: pub, Concurrency: 64, MaxInFlight: c.maxN, MaxInFlightBytes: c.maxBytes})
			st, err := r.Drain(ctx)
			if err != nil || st.Published != 60 || e.pending(t) != 0 {
				t.Fatalf("drain %+v, %v, %d pending", st, err, e.pending(t))
			}
			if p := peak.Load(); p > c.wantPeak || p < 2 {
				t.Fatalf("peak %d publishes in flight, want 2..%d", p, c.wantPeak)
			}
			var got []string
			for _, m := range e.ps.Server.Messages() {
				got = append(got, string(m.Data))
			}
			if len(got) != 60 {
				t.Fatalf("%d messages published, want 60", len(got))
			}
			last := map[string]string{}
			for _, m := range e.ps.Server.Messages() {
				if string(m.Data) <= last[m.OrderingKey] {
					t.Fatalf("key %s: %s after %s", m.OrderingKey, m.Data, last[m.OrderingKey])
				}
				last[m.OrderingKey] = string(m.Data)
			}
		})
	}
}

// TestUndecodableRowFailsAlone: a row whose attributes are not a JSON
// object of strings (not written by Write) fails like a publish, with
// backoff, and the rest of the claim is published.
func TestUndecodableRowFailsAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ids := e.write(t, entry("a", 0), entry("a", 1), entry("b", 0))
	if _, err := e.pool.Exec(ctx, `UPDATE outbox SET attributes = '{"seq": 0}' WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	r := e.relay(t, outbox.Config{Logger: quiet})
	st, err := r.PublishPending(ctx)
	if err != nil || st.Published != 1 || st.Failed != 1 || st.Held != 1 {
		t.Fatalf("pass %+v, %v; want b#0 published, a#0 failed, a#1 held", st, err)
	}
	var lastErr string
	if err := e.pool.QueryRow(ctx, `SELECT last_error FROM outbox WHERE id = $1`, ids[0]).Scan(&lastErr); err != nil || !strings.Contains(lastErr, "decode attributes") {
		t.Fatalf("last_error %q, %v", lastErr, err)
	}
	if got := e.published(t); len(got["a"]) != 0 || len(got["b"]) != 1 {
		t.Fatalf("published %v", got)
	}
}

// TestCancelledPassIsNotAnAttempt: the caller gives up while a publish of
// key k is in progress. Nothing is recorded against the row (no attempt,
// no backoff), the key is released at once, and the same relay publishes
// it in order on its next pass (the key was resumed in the publisher).
func TestCancelledPassIsNotAnAttempt(t *testing.T) {
	e := newEnv(t)
	e.write(t, entry("k", 0), entry("k", 1))
	entered := make(chan struct{})
	var (
		once  sync.Once
		block atomic.Bool
	)
	block.Store(true)
	pub := messaging.PublisherFunc(func(ctx context.Context, topic string, m messaging.Message) (string, error) {
		if block.Load() && m.Attributes["seq"] == "0" {
			once.Do(func() { close(entered) })
			<-ctx.Done()
			return "", ctx.Err()
		}
		return e.pub.Publish(ctx, topic, m)
	})
	r := e.relay(t, outbox.Config{Logger: quiet, Publisher: pub})
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		st  outbox.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := r.PublishPending(ctx)
		done <- result{st, err}
	}()
	<-entered
	cancel()
	res := <-done
	if res.err != nil || res.st.Claimed != 2 || res.st.Failed != 0 || res.st.Held != 2 || res.st.Published != 0 {
		t.Fatalf("cancelled pass %+v, %v; want 2 held, nothing failed", res.st, res.err)
	}
	var attempts, leased int
	var due bool
	if err := e.pool.QueryRow(context.Background(), `SELECT max(attempts), count(lease_until), bool_and(next_attempt_at <= now()) FROM outbox`).Scan(&attempts, &leased, &due); err != nil {
		t.Fatal(err)
	}
	if attempts != 0 || leased != 0 || !due {
		t.Fatalf("after cancellation: attempts %d, %d leased, due %v; want no trace", attempts, leased, due)
	}
	block.Store(false)
	if st, err := r.PublishPending(context.Background()); err != nil || st.Published != 2 {
		t.Fatalf("next pass %+v, %v", st, err)
	}
	if got := e.published(t)["k"]; !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("key k published %v", got)
	}
}
