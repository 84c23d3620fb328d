package dispatch

import (
	"context"
	"fmt"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TopicName is the full resource name of a topic id.
func TopicName(project, id string) string { return "projects/" + project + "/topics/" + id }

// SubscriptionName is the full resource name of a subscription id.
func SubscriptionName(project, id string) string {
	return "projects/" + project + "/subscriptions/" + id
}

// Provision creates the plan's topics, push subscriptions (as pull
// subscriptions the dispatcher drives) and retained subscriptions through the
// real admin clients of c, in c's project. Resources that already exist are
// left as they are, so Provision can run again against the same server.
//
// No dead_letter_policy or retry_policy is set on the server: pstest would
// re-forward dead-lettered messages and ignores backoff, so the Dispatcher
// implements both. Ordering and filter are set, and the server honours them
// on pull.
func Provision(ctx context.Context, c *pubsub.Client, p *Plan) error {
	project := c.Project()
	for _, t := range p.Topics {
		_, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: TopicName(project, t)})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	subs := append(append([]Subscription{}, p.Subscriptions...), p.Retained...)
	for _, s := range subs {
		s = s.withDefaults()
		ack := int32(s.AckDeadline.Seconds())
		if ack < 10 {
			ack = 10
		}
		_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name:                  SubscriptionName(project, s.ID),
			Topic:                 TopicName(project, s.Topic),
			AckDeadlineSeconds:    ack,
			EnableMessageOrdering: s.Ordering,
			Filter:                s.Filter,
		})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("create subscription %s: %w", s.ID, err)
		}
	}
	return nil
}
