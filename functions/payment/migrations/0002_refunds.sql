-- +goose Up
-- Refunds, owned by the payment function: one row per approved payment
-- refunded because its order was cancelled, keyed by the idempotency key
-- the gateway was called with (derived from the order.cancelled event), so
-- a redelivered event never records twice; a payment is refunded (in full)
-- at most once.
CREATE TABLE refunds (
    id                uuid        PRIMARY KEY,
    idempotency_key   text        NOT NULL UNIQUE,
    payment_id        uuid        NOT NULL UNIQUE REFERENCES payments (id),
    order_id          uuid        NOT NULL,
    amount            bigint      NOT NULL CHECK (amount > 0),
    currency          char(3)     NOT NULL,
    gateway_reference text        NOT NULL,
    -- event_id is the order.cancelled event that caused the refund.
    event_id          text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refunds_order ON refunds (order_id);

-- +goose Down
DROP TABLE IF EXISTS refunds;
