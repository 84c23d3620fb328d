-- +goose Up
-- Orders, owned by the orders API; the payment and shipment functions move
-- their status forward with orders.Advance.
CREATE TABLE orders (
    id              uuid        PRIMARY KEY,
    customer_id     text        NOT NULL,
    currency        char(3)     NOT NULL,
    total           bigint      NOT NULL CHECK (total >= 0),
    items           jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'paid', 'payment_failed', 'shipped')),
    idempotency_key text        UNIQUE,
    request_hash    bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Every status an order took, in order: the history the end-to-end tests
-- check ("no shipment before payment").
CREATE TABLE order_status_history (
    id         bigserial   PRIMARY KEY,
    order_id   uuid        NOT NULL REFERENCES orders (id),
    status     text        NOT NULL,
    event_id   text,
    at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX order_status_history_order ON order_status_history (order_id, id);

-- +goose Down
DROP TABLE IF EXISTS order_status_history;
DROP TABLE IF EXISTS orders;
