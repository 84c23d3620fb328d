-- +goose Up
-- parked_keys holds, per subscription consumed with ordering, the ordering
-- keys whose consumer dead-lettered an event (the head): later events of
-- the key are stored in parked_events instead of being applied, until an
-- operator replays or discards the head (eventctl parked). See
-- shared/parking.
CREATE TABLE IF NOT EXISTS parked_keys (
    subscription      text        NOT NULL,
    ordering_key      text        NOT NULL,
    consumer          text        NOT NULL,
    topic             text        NOT NULL,
    -- 'parked': waiting for an operator; 'replaying': the head was
    -- replayed and is on its way; 'draining': the head is resolved and the
    -- parked events are being applied in order.
    state             text        NOT NULL DEFAULT 'parked'
                      CHECK (state IN ('parked', 'replaying', 'draining')),
    head_event_key    text        NOT NULL,
    head_event_id     text        NOT NULL,
    head_event_type   text        NOT NULL,
    head_message_id   text        NOT NULL,
    head_data         bytea       NOT NULL,
    head_attributes   jsonb       NOT NULL,
    dead_letter_id    text        NOT NULL,
    reason            text        NOT NULL,
    -- dead_letters counts the dead letters of the key since it was parked
    -- (a replayed head that fails again, a parked event that fails).
    dead_letters      integer     NOT NULL DEFAULT 1,
    parked_at         timestamptz NOT NULL DEFAULT now(),
    head_since        timestamptz NOT NULL DEFAULT now(),
    release_action    text        CHECK (release_action IN ('replay', 'discard')),
    released_by       text,
    release_reason    text,
    release_requested_at timestamptz,
    -- The lease of the delivery applying the parked events, so two
    -- deliveries never drain one key at once.
    drain_token       text,
    drain_until       timestamptz,
    PRIMARY KEY (subscription, ordering_key)
);

-- parked_events are the events that arrived for a parked key, in arrival
-- order (seq), each once per subscription (event_key).
CREATE TABLE IF NOT EXISTS parked_events (
    seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription text        NOT NULL,
    ordering_key text        NOT NULL,
    event_key    text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    message_id   text        NOT NULL,
    data         bytea       NOT NULL,
    attributes   jsonb       NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subscription, event_key),
    -- No cascade: a key is released only once its events are applied, and
    -- an event parked while its key is being released must fail (and be
    -- applied normally) rather than be orphaned.
    FOREIGN KEY (subscription, ordering_key) REFERENCES parked_keys (subscription, ordering_key)
);
CREATE INDEX IF NOT EXISTS parked_events_key_idx ON parked_events (subscription, ordering_key, seq);

-- parked_releases is the audit of every release an operator asked for:
-- who replayed or discarded which head, and why.
CREATE TABLE IF NOT EXISTS parked_releases (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription   text        NOT NULL,
    ordering_key   text        NOT NULL,
    head_event_id  text        NOT NULL,
    dead_letter_id text        NOT NULL,
    action         text        NOT NULL,
    released_by    text        NOT NULL,
    reason         text        NOT NULL,
    parked_at      timestamptz NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE IF EXISTS parked_releases;
DROP TABLE IF EXISTS parked_events;
DROP TABLE IF EXISTS parked_keys;
