// Package ordersapi is the orders API: an HTTP service on Cloud Run,
// registered with functions-framework-go (entry point OrdersAPI) so it
// deploys from source, and run locally as a plain server by ./cmd.
//
// It accepts orders (POST /v1/orders, with Idempotency-Key for client
// retries), stores each with its order.created event in the outbox in one
// transaction, publishes the event after commit, and shows an order's
// status as the payment and shipment functions move it (GET
// /v1/orders/{id}). Events whose publish after commit failed are published
// by the outbox relay service (functions/relay). See NewHandler.
//
// It cancels orders: POST /v1/orders/{id}:cancel, with an optional JSON
// body {"reason":"…"} (at most 1024 bytes of text; an empty body needs no
// Content-Type). In one transaction it locks the order's row, moves it to
// cancelled (from pending, paid or payment_failed) and writes the
// order.cancelled event to the outbox, then publishes it after the commit
// like order.created: on the same topic (order.created) and ordering key
// (the order id), so a consumer never sees the cancellation before the
// creation. The event's id is CancelEventID(order id), so retrying a
// cancellation can never emit a second one. Answers:
//
//	200  the order (as GET shows it), now cancelled; also for an order that
//	     was already cancelled, which writes and publishes nothing
//	400  invalid id, or a body that is not JSON, has unknown or duplicate
//	     members, or a reason that is not a string, too long or holds
//	     control characters (problem+json naming the field)
//	404  no such order, or an unknown action (:refund)
//	405  another method than POST on :cancel
//	409  the order already shipped (problem type order-already-shipped)
//	413  a body over 8 KiB; 415 a body that is not application/json
//	503  the database failed: retry (the cancellation is idempotent)
//
// The payment function refunds a cancelled order's approved charge; the
// shipment function does not ship a cancelled order (the row lock makes a
// cancellation and a shipment of one order serialise: a cancellation of a
// shipped order gets 409, a shipment of a cancelled one is skipped).
//
// Configuration (environment, checked at the first request, one message
// listing everything missing): FUNCTION_NAME, GOOGLE_CLOUD_PROJECT, and
// DATABASE_URL or DB_INSTANCE_CONNECTION_NAME + DB_NAME + DB_USER (with
// DB_IAM_AUTH, DB_IP_TYPE); optional LOG_LEVEL and PUBSUB_EMULATOR_HOST.
package ordersapi
