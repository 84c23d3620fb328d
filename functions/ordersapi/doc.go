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
// Configuration (environment, checked at the first request, one message
// listing everything missing): FUNCTION_NAME, GOOGLE_CLOUD_PROJECT, and
// DATABASE_URL or DB_INSTANCE_CONNECTION_NAME + DB_NAME + DB_USER (with
// DB_IAM_AUTH, DB_IP_TYPE); optional LOG_LEVEL and PUBSUB_EMULATOR_HOST.
package ordersapi
