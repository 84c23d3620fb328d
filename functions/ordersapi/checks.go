package ordersapi

import (
	"context"
	"fmt"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
