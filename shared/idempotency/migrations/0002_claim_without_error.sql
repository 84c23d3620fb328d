-- +goose Up
-- idempotency_claim replaces idempotency_claim_tx (kept for binaries still
-- running the old code during a rollout): it returns the outcome instead
-- of raising, so a duplicate leaves no ERROR line in the server log (a
-- duplicate storm would otherwise flood Cloud SQL's error log and trip
-- error-rate alerts). It is sent as
-- "SELECT idempotency_claim(...); BEGIN" in one simple-protocol message:
-- the BEGIN turns the implicit transaction holding the claim row into an
-- explicit one that the handler's writes join. When the outcome is not
-- 'claimed', the client ends that transaction with ROLLBACK (nothing was
-- written, so it costs no commit).
--
-- A concurrent claimer of the same key waits on the primary key until the
-- first transaction ends: after a commit it sees the record (duplicate),
-- after a rollback its own insert succeeds. Each statement of a plpgsql
-- function takes a new snapshot under READ COMMITTED, so the SELECT sees
-- the row that the INSERT conflicted with.
--
-- Returns 'claimed', 'duplicate' (done, same payload), 'mismatch' (another
-- payload hash) or 'in_progress' (held by a lease-mode claim).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION idempotency_claim(p_consumer text, p_key text, p_hash bytea)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    LOOP
        INSERT INTO processed_events (consumer, event_key, payload_hash, status, completed_at)
        VALUES (p_consumer, p_key, p_hash, 'done', now())
        ON CONFLICT (consumer, event_key) DO NOTHING;
        IF FOUND THEN
            RETURN 'claimed';
        END IF;
        -- COLLATE: see idempotency_claim_tx.
        SELECT status, payload_hash INTO r
          FROM processed_events
         WHERE consumer = p_consumer COLLATE "default" AND event_key = p_key COLLATE "default";
        IF FOUND THEN
            IF p_hash IS NOT NULL AND r.payload_hash IS NOT NULL AND r.payload_hash <> p_hash THEN
                RETURN 'mismatch';
            ELSIF r.status = 'in_progress' THEN
                RETURN 'in_progress';
            END IF;
            RETURN 'duplicate';
        END IF;
        -- The conflicting row was deleted (released or purged) in between: claim again.
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS idempotency_claim(text, text, bytea);
