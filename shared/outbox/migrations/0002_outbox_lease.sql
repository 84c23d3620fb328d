-- +goose Up
-- Leases: a relay claims a batch of rows in one short statement that
-- leases the head (oldest pending row) of each key it takes (claimed_by,
-- lease_until) and commits at once; no transaction stays open while it
-- publishes. While its head is pending and leased, no other row of the key
-- can be claimed. A lease that is not renewed (the relay died) expires and
-- the key can be claimed again.
--
-- Parking: an operator can park a row (eventctl outbox park). A parked row
-- is never claimed and, being still pending, keeps blocking the later rows
-- of its key, so parking never reorders a key.
--
-- Every statement is idempotent (IF NOT EXISTS), so many instances may run
-- this at once (postgres.Migrate also serialises them with a lock). Adding
-- nullable columns without defaults does not rewrite the table.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claimed_by  text;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS lease_until timestamptz;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS parked_at   timestamptz;

-- Parked pending rows per key: the claim stops a key's successors at its
-- first parked row.
CREATE INDEX IF NOT EXISTS outbox_parked_idx
    ON outbox (topic, ordering_key, id) WHERE parked_at IS NOT NULL AND published_at IS NULL;

-- +goose Down
DROP INDEX IF EXISTS outbox_parked_idx;
ALTER TABLE outbox DROP COLUMN IF EXISTS parked_at, DROP COLUMN IF EXISTS lease_until, DROP COLUMN IF EXISTS claimed_by;
