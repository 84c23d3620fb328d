// Package outbox implements the transactional outbox of DESIGN.md: outgoing
// messages are written to the outbox table inside the caller's transaction,
// together with the business writes, and published after commit, either at
// once by the writer (Relay.PublishAfterCommit) or later by a relay
// (Relay.PublishPending, Relay.Drain, Relay.Run) that publishes whatever is
// left.
//
// # Guarantees
//
// Atomicity: a row exists if and only if the caller's transaction committed.
// Rows written in a transaction that rolls back are never published.
//
// At-least-once: every committed row is published at least once, as long as
// some relay keeps running. A row is marked published after the publisher
// has acknowledged it. If the process dies or loses its database between
// the acknowledgement and the mark, the row is published again once the
// claim's lease expires. Consumers must therefore be idempotent (they are:
// see package idempotency); in the normal case no row is published twice.
//
// Per-key order: an ordering key is scoped to its topic, as in Pub/Sub. The
// rows of one (topic, ordering key) are handed to the publisher in id order
// by one relay at a time, and the publisher keeps that order: the Pub/Sub
// client (messaging.PubSub) sends a key's messages in order and, after a
// failure, fails the later ones and refuses new ones until the relay
// resumes the key; any other Publisher is driven one message per key at a
// time (messaging.Async). When a publish fails, the rest of its key waits:
// the failed row records attempts, last_error and a backoff (RetryBackoff,
// doubling up to MaxRetryBackoff, 1s to 5m by default), and the key is
// retried from that row once the backoff has passed. Other keys carry on at
// full speed. Rows with an empty ordering key are independent of each other.
// A row that can never be published (its topic was deleted, say) blocks its
// key until an operator acts: past Config.StuckAfter (15m) each of its
// failed attempts logs the warning StuckMessage, Status counts it as Stuck,
// Stuck lists it, and Retry and Park act on it (eventctl outbox stuck,
// retry, park). A parked row is never published but keeps blocking its
// key, so parking cannot reorder a key.
//
// After a relay dies mid-claim, the next relay publishes the key again from
// its oldest unmarked row: the head of the dead relay's claim (marked last,
// see below) and any row whose mark was lost. Messages already published
// once may then be published again, each time in id order.
//
// Id order is commit order for one key: Write takes a transaction-scoped
// advisory lock per (topic, ordering key), so two transactions writing the
// same key are serialised and the later one gets the larger ids. Without that
// lock (Writer.NoKeyLock) the caller must serialise writers of a key itself,
// for example by locking the aggregate's row.
//
// # Claiming, and concurrency between relays
//
// No transaction stays open while publishing (DESIGN.md, failure model):
// PostgreSQL's idle_in_transaction_session_timeout would otherwise kill a
// slow pass and lose its progress. Instead a relay claims rows with one
// short autocommit statement that leases the heads of the keys it takes:
//
//   - A head is a pending row that is the oldest pending row of its key (any
//     key-less row is a head), not parked, not in backoff and not under a
//     live lease. Heads are taken oldest first; the statement locks them
//     FOR UPDATE SKIP LOCKED, so of two relays claiming at once only one
//     gets a key, and sets claimed_by and lease_until on them.
//   - Each head brings the later pending rows of its key, in id order, up
//     to the key's first parked row and BatchSize rows (and
//     MaxInFlightBytes bytes) in all.
//   - Leasing the head is enough to own the key: while the head is pending,
//     no later row of its key is a head, so no other relay can claim any of
//     them.
//
// The relay then hands all claimed rows to the publisher without waiting
// (up to MaxInFlight messages and MaxInFlightBytes bytes at once), and a
// recorder goroutine marks the acknowledged rows published in batches
// (UPDATE ... WHERE id = ANY($1)) as the acknowledgements arrive, except
// the heads. When every result of a claim is in, one statement settles it:
// it marks its acknowledged heads published, records the failures with
// their backoff and clears the leases, which frees the keys; only then
// does the relay resume the failed keys in the publisher. A relay renews
// its leases every Lease/3 while it publishes, so a lease (1m by default)
// only expires when its relay is gone. Drain and Run claim the next batch
// while the previous ones are still in flight, so the pipe stays full.
package outbox
