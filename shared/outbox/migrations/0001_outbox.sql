-- +goose Up
-- outbox: events written in the same transaction as the business writes,
-- published after commit by the writer (fast path) or by a relay.
CREATE TABLE IF NOT EXISTS outbox (
    id              bigserial   PRIMARY KEY,
    topic           text        NOT NULL CHECK (topic <> ''),
    ordering_key    text        NOT NULL DEFAULT '',
    data            bytea       NOT NULL,
    attributes      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);

-- Pending rows in id (= publish) order: the relay's claim scan.
CREATE INDEX IF NOT EXISTS outbox_pending_idx
    ON outbox (id) WHERE published_at IS NULL;

-- Pending rows of one ordering key in order: the "is this the oldest
-- pending row of its key" check and the fetch of a claimed key's rows.
CREATE INDEX IF NOT EXISTS outbox_pending_key_idx
    ON outbox (topic, ordering_key, id) WHERE published_at IS NULL;

-- Published rows by age: PurgePublished.
CREATE INDEX IF NOT EXISTS outbox_published_idx
    ON outbox (published_at) WHERE published_at IS NOT NULL;

-- +goose Down
DROP TABLE IF EXISTS outbox;
