-- +goose Up
-- customer_stats: per customer and currency, the number and total of the
-- customer's orders.
CREATE TABLE IF NOT EXISTS customer_stats (
    customer_id text   NOT NULL,
    currency    text   NOT NULL,
    orders      bigint NOT NULL,
    total       bigint NOT NULL,
    PRIMARY KEY (customer_id, currency)
);

-- +goose Down
DROP TABLE IF EXISTS customer_stats;
