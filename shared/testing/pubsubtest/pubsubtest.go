// Package pubsubtest starts the Pub/Sub client library's in-memory server
// (pstest) and connects a real v2 client to it.
package pubsubtest

import (
	"context"
	"testing"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Project is the project id tests use.
const Project = "test-project"

// Fake is a running pstest server and a client connected to it.
type Fake struct {
	Server *pstest.Server
	Client *pubsub.Client
}

// New starts a pstest server and returns it with a connected client; both
// are closed when tb ends.
func New(tb testing.TB) *Fake {
	tb.Helper()
	srv := pstest.NewServer()
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Close()
		tb.Fatalf("pubsubtest: dial: %v", err)
	}
	client, err := pubsub.NewClient(context.Background(), Project, option.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		srv.Close()
		tb.Fatalf("pubsubtest: client: %v", err)
	}
	tb.Cleanup(func() {
		client.Close()
		conn.Close()
		srv.Close()
	})
	return &Fake{Server: srv, Client: client}
}

// TopicName returns the full resource name of a topic id.
func TopicName(id string) string { return "projects/" + Project + "/topics/" + id }

// SubscriptionName returns the full resource name of a subscription id.
func SubscriptionName(id string) string { return "projects/" + Project + "/subscriptions/" + id }

// CreateTopic creates a topic and fails tb on error.
func (f *Fake) CreateTopic(tb testing.TB, id string) {
	tb.Helper()
	if _, err := f.Client.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: TopicName(id)}); err != nil {
		tb.Fatalf("pubsubtest: create topic %s: %v", id, err)
	}
}

// CreateSubscription creates a pull subscription on topic, with message
// ordering enabled, and fails tb on error.
func (f *Fake) CreateSubscription(tb testing.TB, id, topic string) {
	tb.Helper()
	_, err := f.Client.SubscriptionAdminClient.CreateSubscription(context.Background(), &pubsubpb.Subscription{
		Name:                  SubscriptionName(id),
		Topic:                 TopicName(topic),
		AckDeadlineSeconds:    10,
		EnableMessageOrdering: true,
	})
	if err != nil {
		tb.Fatalf("pubsubtest: create subscription %s: %v", id, err)
	}
}
