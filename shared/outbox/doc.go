// Package outbox implements the transactional outbox of DESIGN.md: outgoing
// messages are written to the outbox table inside the caller's transaction,
// together with the business writes, and published after commit, either at
// once by the writer (Relay.PublishAfterCommit) or later by a relay
// (Relay.PublishPending, Relay.Run) that publishes whatever is left.
//
// # Guarantees
//
// Atomicity: a row exists if and only if the caller's transaction committed.
// Rows written in a transaction that rolls back are never published.
//
// At-least-once: every committed row is published at least once, as long as
// some relay keeps running. A row is marked published in the same database
// transaction that claimed it, after the publisher has acknowledged it. If the
// process crashes, its connection is killed or the commit fails between the
// acknowledgement and the commit, the marks are lost and the rows are
// published again by the next pass. Consumers must therefore be idempotent
// (they are: see package idempotency); in the normal case no row is published
// twice.
//
// Per-key order: an ordering key is scoped to its topic, as in Pub/Sub. Rows
// of one (topic, ordering key) are published in id order, one at a time, each
// only after the previous one was acknowledged, and never by two relays at
// once. When a publish fails, the key is paused: no later row of that key is
// published in that pass, the failed row records attempts and last_error,
// and the next pass resumes from the failed row. Rows of other keys carry on.
// Rows with an empty ordering key are independent of each other. A row that
// can never be published (for example its topic was deleted) blocks its key
// until an operator intervenes; Status shows it as Failing with its age.
//
// Id order is commit order for one key: Write takes a transaction-scoped
// advisory lock per (topic, ordering key), so two transactions writing the
// same key are serialised and the later one gets the larger ids. Without that
// lock (Writer.NoKeyLock) the caller must serialise writers of a key itself,
// for example by locking the aggregate's row.
//
// # Concurrency between relays
//
// Any number of relays (and PublishAfterCommit callers) may run at once
// against one database. A pass claims rows in a transaction with
// SELECT ... FOR UPDATE SKIP LOCKED, but only rows that are the oldest
// pending row of their key (the "head"). Holding the head's row lock owns
// the whole key for the pass: another relay skips the locked head and, while
// the head is pending, sees every later row of that key as "not a head", so it
// takes nothing of that key. The lock is held while publishing and released
// by the commit that marks the rows, so a crashed relay releases its keys as
// soon as PostgreSQL notices the dead connection; there is no lease to expire
// and no clock to trust. The price is one open transaction (and pooled
// connection) per running pass: keep BatchSize and PublishTimeout such that a
// pass stays well below idle_in_transaction_session_timeout, if set.
package outbox
