-- +goose Up
-- Orders can be cancelled (POST /v1/orders/{id}:cancel) from pending, paid
-- or payment_failed; see the status machine in orders.go.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'paid', 'payment_failed', 'shipped', 'cancelled'));

-- +goose Down
-- Fails while a cancelled order exists: cancellations cannot be undone by
-- a schema change.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'paid', 'payment_failed', 'shipped'));
