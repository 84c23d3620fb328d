package replay_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/google/uuid"

	"example.com/platform/shared/testing/pgtest"
	"example.com/platform/tools/ops/replay"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Concurrent unforced claims of one dead letter from two runs: exactly one
// wins; a failed replay does not count; a forced claim sees the priors.
func TestClaimIsExclusive(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if err := replay.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := replay.Migrate(ctx, pool); err != nil { // idempotent
		t.Fatal(err)
	}
	a := &replay.Audit{Pool: pool}
	count := func(p []replay.Prior) int { return len(p) + 1 }
	const runs = 8
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = uuid.NewString()
		if err := a.BeginRun(ctx, replay.Run{ID: ids[i], By: "t", Archive: "jsonl:x", Filters: map[string]any{"limit": 1}}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, refused := 0, 0
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := a.Claim(ctx, replay.ClaimMessage{ReplayID: ids[i], ArchiveID: "dl-1", Topic: "t", Count: count}, false)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, replay.ErrAlreadyReplayed):
				refused++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || refused != runs-1 {
		t.Fatalf("won %d refused %d", won, refused)
	}
	// A failed publish frees the dead letter for an unforced replay.
	var winner string
	if err := pool.QueryRow(ctx, `SELECT replay_id::text FROM dlq_replay_messages WHERE archive_id = 'dl-1'`).Scan(&winner); err != nil {
		t.Fatal(err)
	}
	if err := a.Finish(ctx, winner, "dl-1", "", errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	other := ids[0]
	if other == winner {
		other = ids[1]
	}
	n, priors, err := a.Claim(ctx, replay.ClaimMessage{ReplayID: other, ArchiveID: "dl-1", Topic: "t", Count: count}, false)
	if err != nil || n != 1 || len(priors) != 0 {
		t.Fatalf("claim after a failure: %d %v %v", n, priors, err)
	}
	if err := a.Finish(ctx, other, "dl-1", "msg-9", nil); err != nil {
		t.Fatal(err)
	}
	p, err := a.Priors(ctx, "dl-1")
	if err != nil || len(p) != 1 || p[0].NewMessage != "msg-9" || p[0].Result != "published" {
		t.Fatalf("priors %+v %v", p, err)
	}
	third := uuid.NewString()
	a.BeginRun(ctx, replay.Run{ID: third, By: "t", Archive: "x", Forced: true})
	n, priors, err = a.Claim(ctx, replay.ClaimMessage{ReplayID: third, ArchiveID: "dl-1", Topic: "t", Count: count}, true)
	if err != nil || n != 2 || len(priors) != 1 {
		t.Fatalf("forced claim: %d %v %v", n, priors, err)
	}
}
