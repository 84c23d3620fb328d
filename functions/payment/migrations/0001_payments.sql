-- +goose Up
-- Payments, owned by the payment function: one row per charge attempt that
-- reached an outcome (approved or declined), keyed by the idempotency key
-- the gateway was called with, so a redelivered event never records twice.
CREATE TABLE payments (
    id                uuid        PRIMARY KEY,
    idempotency_key   text        NOT NULL UNIQUE,
    order_id          uuid        NOT NULL,
    customer_id       text        NOT NULL,
    amount            bigint      NOT NULL CHECK (amount >= 0),
    currency          char(3)     NOT NULL,
    status            text        NOT NULL CHECK (status IN ('approved', 'declined')),
    gateway_reference text,
    decline_code      text,
    -- event_id is the order.created event that caused the charge.
    event_id          text        NOT NULL,
    -- order_moved is false when the order had already left pending by the
    -- time the outcome was recorded (another event for the same order won):
    -- no payment event was emitted and the charge needs reconciling.
    order_moved       boolean     NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Not unique: a second charge of one order (see order_moved) must still be
-- recorded so that it can be found and refunded.
CREATE INDEX payments_order ON payments (order_id);

-- +goose Down
DROP TABLE IF EXISTS payments;
