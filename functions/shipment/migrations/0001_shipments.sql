-- +goose Up
-- Shipments, owned by the shipment function: one per order. The order id is
-- unique, so a second payment.processed for the same order (a replay under a
-- new event id) can never create a second shipment, whatever the code does.
-- Every value is derived from the payment.processed event that created the
-- row (see tracking.go), so a redelivery after a rollback recreates the
-- same row.
CREATE TABLE shipments (
    id              uuid        PRIMARY KEY,
    order_id        uuid        NOT NULL UNIQUE REFERENCES orders (id),
    payment_id      uuid        NOT NULL,
    carrier         text        NOT NULL,
    tracking_number text        NOT NULL UNIQUE,
    event_source    text        NOT NULL,
    event_id        text        NOT NULL,
    dispatched_at   timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE IF EXISTS shipments;
