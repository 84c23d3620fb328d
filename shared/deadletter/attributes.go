package deadletter

import (
	"maps"
	"slices"
	"strings"
)

// Attributes Pub/Sub adds when it forwards a message to a dead-letter topic
// itself, after the subscription's maximum delivery attempts (the local
// push dispatcher adds the same). AttrPubSubDeliveryError is what push
// subscriptions add: the reason of the last failed push. Push headers lose
// their case; Lookup matches without regard to it.
const (
	AttrPubSubDeliveryCount       = "CloudPubSubDeadLetterSourceDeliveryCount"
	AttrPubSubSubscription        = "CloudPubSubDeadLetterSourceSubscription"
	AttrPubSubSubscriptionProject = "CloudPubSubDeadLetterSourceSubscriptionProject"
	AttrPubSubTopicPublishTime    = "CloudPubSubDeadLetterSourceTopicPublishTime"
	AttrPubSubDeliveryError       = "CloudPubSubDeadLetterSourceDeliveryErrorMessage"
)

// Attribute prefixes: PubSubAttrPrefix of every attribute Pub/Sub's own
// dead-lettering adds, ReasonAttrPrefix of every attribute Annotate adds.
const (
	PubSubAttrPrefix = "CloudPubSubDeadLetterSource"
	ReasonAttrPrefix = "dlq-"
)

// PubSubPublishTimeLayout formats AttrPubSubTopicPublishTime (UTC,
// milliseconds, "+00:00" offset, the form Pub/Sub writes).
const PubSubPublishTimeLayout = "2006-01-02T15:04:05.000-07:00"

// Lookup returns attrs[key], matching the key without regard to case (a
// no-wrapper push turns attributes into HTTP headers, which lose case).
func Lookup(attrs map[string]string, key string) string {
	if v, ok := attrs[key]; ok {
		return v
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if strings.EqualFold(k, key) {
			return attrs[k]
		}
	}
	return ""
}
