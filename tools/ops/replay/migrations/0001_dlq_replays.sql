-- +goose Up
-- dlq_replays is the audit log of `eventctl dlq replay`: one row per run
-- (who, when, which filters, how it ended) ...
CREATE TABLE IF NOT EXISTS dlq_replays (
    replay_id   uuid        PRIMARY KEY,
    replayed_by text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    archive     text        NOT NULL,
    filters     jsonb       NOT NULL,
    forced      boolean     NOT NULL,
    selected    integer     NOT NULL,
    published   integer     NOT NULL DEFAULT 0,
    failed      integer     NOT NULL DEFAULT 0,
    refused     integer     NOT NULL DEFAULT 0,
    result      text        NOT NULL DEFAULT 'running'
                CHECK (result IN ('running', 'completed', 'completed_with_errors', 'aborted'))
);

-- ... and dlq_replay_messages one row per message it republished or tried
-- to: the archived dead letter (archive_id, its CloudEvent id and original
-- Pub/Sub message id) -> the message id of the new publish, and the result.
-- A row is inserted as 'publishing' before the publish and updated after
-- it, so a run killed in between leaves 'publishing', which (like
-- 'published') refuses a later replay of the same dead letter unless forced.
CREATE TABLE IF NOT EXISTS dlq_replay_messages (
    replay_id           uuid        NOT NULL REFERENCES dlq_replays (replay_id),
    archive_id          text        NOT NULL,
    event_id            text,
    original_message_id text,
    topic               text        NOT NULL,
    new_message_id      text,
    replay_count        integer     NOT NULL,
    result              text        NOT NULL CHECK (result IN ('publishing', 'published', 'failed')),
    error               text,
    replayed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (replay_id, archive_id)
);

CREATE INDEX IF NOT EXISTS dlq_replay_messages_archive_idx ON dlq_replay_messages (archive_id);

-- +goose Down
DROP TABLE IF EXISTS dlq_replay_messages;
DROP TABLE IF EXISTS dlq_replays;
