-- +goose Up
-- processed_events records, per consumer, every event it has processed
-- (status 'done') or is processing under a lease (status 'in_progress').
CREATE TABLE IF NOT EXISTS processed_events (
    consumer         text        NOT NULL,
    event_key        text        NOT NULL,
    payload_hash     bytea,
    status           text        NOT NULL CHECK (status IN ('in_progress', 'done')),
    lease_token      text,
    lease_expires_at timestamptz,
    result           bytea,
    attempts         integer     NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    PRIMARY KEY (consumer, event_key),
    CHECK ((status = 'done') = (completed_at IS NOT NULL)),
    CHECK ((status = 'in_progress') = (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- Purge deletes completed records by age and abandoned leases by expiry.
CREATE INDEX IF NOT EXISTS processed_events_done_purge_idx
    ON processed_events (completed_at) WHERE status = 'done';
CREATE INDEX IF NOT EXISTS processed_events_lease_purge_idx
    ON processed_events (lease_expires_at) WHERE status = 'in_progress';

-- idempotency_claim_tx claims an event for transactional mode. It is sent
-- as "SELECT idempotency_claim_tx(...); BEGIN" in one simple-protocol
-- message: when the claim row is inserted, the BEGIN turns the implicit
-- transaction into an explicit one that still holds the row, and the
-- handler's writes join it. When the event is already recorded the
-- function raises, the implicit transaction rolls back, BEGIN never runs
-- and the connection is idle again: a duplicate costs one round trip.
--
-- A concurrent claimer of the same key waits on the primary key until the
-- first transaction ends: after a commit it raises duplicate, after a
-- rollback its own insert succeeds. Each statement of a plpgsql function
-- takes a new snapshot under READ COMMITTED, so the SELECT sees the row
-- that the INSERT conflicted with.
--
-- SQLSTATEs: IDMP1 duplicate (done, same payload), IDMP2 payload mismatch,
-- IDMP3 in progress under a lease (lease mode owns the key).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION idempotency_claim_tx(p_consumer text, p_key text, p_hash bytea)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    LOOP
        INSERT INTO processed_events (consumer, event_key, payload_hash, status, completed_at)
        VALUES (p_consumer, p_key, p_hash, 'done', now())
        ON CONFLICT (consumer, event_key) DO NOTHING;
        IF FOUND THEN
            RETURN;
        END IF;
        -- COLLATE: the caller may pass arguments of another collation
        -- (convert_from(bytea, name) yields "C"), which would keep the
        -- planner off the primary key index.
        SELECT status, payload_hash INTO r
          FROM processed_events
         WHERE consumer = p_consumer COLLATE "default" AND event_key = p_key COLLATE "default";
        IF FOUND THEN
            IF p_hash IS NOT NULL AND r.payload_hash IS NOT NULL AND r.payload_hash <> p_hash THEN
                RAISE EXCEPTION USING ERRCODE = 'IDMP2', MESSAGE = 'idempotency: payload does not match the recorded event';
            ELSIF r.status = 'in_progress' THEN
                RAISE EXCEPTION USING ERRCODE = 'IDMP3', MESSAGE = 'idempotency: event is in progress under a lease';
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'IDMP1', MESSAGE = 'idempotency: event already processed';
        END IF;
        -- The conflicting row was deleted (released or purged) in between: claim again.
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS idempotency_claim_tx(text, text, bytea);
DROP TABLE IF EXISTS processed_events;
