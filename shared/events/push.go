package events

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"example.com/platform/shared/messaging"
)

// NewPushRequest builds the HTTP request a Pub/Sub no-wrapper push
// subscription with write_metadata sends for m: the data as the body,
// every attribute as a header of the same name, and the delivery metadata
// as x-goog-pubsub-* headers (the ordering key from m, the attempt only
// when d.Attempt > 0). The local dispatcher and end-to-end tests use it to
// deliver exactly what production delivers; DecodeRequest reverses it.
// It adds no Authorization header.
func NewPushRequest(ctx context.Context, url string, m messaging.Message, d Delivery) (*http.Request, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(m.Data))
	if err != nil {
		return nil, fmt.Errorf("new push request: %w", err)
	}
	for k, v := range m.Attributes {
		r.Header.Set(k, v)
	}
	set := func(k, v string) {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	set(HeaderSubscription, d.Subscription)
	set(HeaderMessageID, d.MessageID)
	if !d.PublishTime.IsZero() {
		set(HeaderPublishTime, d.PublishTime.UTC().Format(time.RFC3339Nano))
	}
	set(HeaderOrderingKey, m.OrderingKey)
	if d.Attempt > 0 {
		set(HeaderDeliveryAttempt, strconv.Itoa(d.Attempt))
	}
	r.Header.Set("User-Agent", "CloudPubSub-Google")
	return r, nil
}
