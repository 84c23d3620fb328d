// Package ordersapi is the orders API: an HTTP service on Cloud Run,
// registered with functions-framework-go (entry point OrdersAPI) so it
// deploys from source, and run locally as a plain server by ./cmd.
//
// It accepts orders (POST /v1/orders, with Idempotency-Key for client
// retries), stores each with its order.created event in the outbox in one
// transaction, publishes the event after commit, and shows an order's
// status as the payment and shipment functions move it (GET
// /v1/orders/{id}). Cloud Scheduler calls POST /internal/outbox/relay to
// publish events whose publish after commit failed. See NewHandler.
//
// Configuration (environment, checked at the first request, one message
// listing everything missing): FUNCTION_NAME, GOOGLE_CLOUD_PROJECT, and
// DATABASE_URL or DB_INSTANCE_CONNECTION_NAME + DB_NAME + DB_USER (with
// DB_IAM_AUTH, DB_IP_TYPE); optional LOG_LEVEL and PUBSUB_EMULATOR_HOST.
package ordersapi

import (
	"context"
	"fmt"
	"net/http"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/platform/shared/app"
	"example.com/platform/shared/domain"
	"example.com/platform/shared/events"
)

// EntryPoint is the function's entry point (function.yaml entry_point).
const EntryPoint = "OrdersAPI"

// needs: PostgreSQL and Pub/Sub; the API has no variables of its own.
var needs = app.Needs{Database: true, PubSub: true}

// lazy builds the API on the first request: importing the package (tests,
// the framework's registration) dials nothing.
var lazy = app.NewLazy(func(ctx context.Context) (http.Handler, error) { return build(ctx, nil) }, nil)

func init() { functions.HTTP(EntryPoint, entry(lazy).ServeHTTP) }

// entry answers /healthz itself, so liveness does not depend on the
// database or the configuration, and hands every other request to api.
func entry(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+HealthzPath, Healthz)
	mux.Handle("/", api)
	return mux
}

// build reads the configuration from getenv (os.Getenv when nil), connects
// to PostgreSQL (applying the orders and outbox migrations) and Pub/Sub,
// and returns the API. Configuration errors wrap app.ErrConfig.
func build(ctx context.Context, getenv func(string) string) (http.Handler, error) {
	env, err := app.LoadEnv(getenv, needs)
	if err != nil {
		return nil, err
	}
	deps, err := app.Open(ctx, env, needs, nil)
	if err != nil {
		return nil, err
	}
	topic, err := events.TopicFor(domain.TypeOrderCreated)
	if err != nil {
		deps.Close()
		return nil, err
	}
	svc := &Service{DB: deps.DB, Outbox: deps.Relay, Logger: deps.Logger}
	deps.Logger.Info("orders API ready")
	return NewHandler(svc, Options{Checks: []Check{
		DatabaseCheck(deps.DB),
		TopicCheck(deps.PubSub, env.Project, topic),
	}}), nil
}

// DatabaseCheck is the readiness check "database": a ping.
func DatabaseCheck(pool *pgxpool.Pool) Check {
	return Check{Name: "database", Func: func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		return nil
	}}
}

// TopicCheck is the readiness check "publisher": Pub/Sub answers a GetTopic
// for topic. NotFound fails it. PermissionDenied passes: Pub/Sub is
// reachable, and roles/pubsub.publisher (all the service account holds on
// the topic) does not include pubsub.topics.get.
func TopicCheck(c *pubsub.Client, project, topic string) Check {
	name := "projects/" + project + "/topics/" + topic
	return Check{Name: "publisher", Func: func(ctx context.Context) error {
		_, err := c.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: name})
		switch status.Code(err) {
		case codes.OK, codes.PermissionDenied:
			return nil
		case codes.NotFound:
			return fmt.Errorf("topic %s does not exist", topic)
		default:
			return fmt.Errorf("get topic %s: %w", topic, err)
		}
	}}
}
