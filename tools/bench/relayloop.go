package bench

import (
	"context"
	"io"
	"log/slog"
	"time"

	"example.com/platform/shared/messaging"
	"example.com/platform/shared/outbox"
)

// relayEvery is how often the suite drains the stack's outbox of rows that
// publish after commit left behind (it gave up within its budget, as under
// overload): what the scheduled outbox relay does in production (every
// minute there). Without it an order whose event stayed in the outbox
// would never ship, and the dispatcher, which only sees Pub/Sub, would
// call the system quiet. Not more often: a drain also claims rows whose
// publish after commit is merely late, and takes CPU from the stack.
const relayEvery = 10 * time.Second

// startRelay drains the stack's outbox every relayEvery until the returned
// func is called.
func (r *runner) startRelay() (stop func(), err error) {
	pub := messaging.NewPubSub(r.st.Client)
	relay, err := outbox.NewRelay(outbox.Config{Pool: r.db, Publisher: pub, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(relayEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if st, err := relay.Drain(ctx); err == nil && st.Published > 0 {
					r.relayed.Add(int64(st.Published))
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
		pub.Stop()
	}, nil
}
