// Package events defines the domain events (CloudEvents 1.0, typed and
// versioned payloads), encodes them as Pub/Sub messages and decodes the
// push requests Google delivers to a function.
//
// # Types and topics
//
// The kernel knows no event type. A domain package declares each of its
// types in init with Register: a versioned type name, the Go payload type
// (implementing Payload) and the one topic (a key of topics.yaml) it is
// published to. Every program importing the domain package can then encode
// and decode its events; Types, Lookup and TopicFor read the registry. The
// reference domain is package example.com/platform/shared/domain (whose
// tests check its registrations against topics.yaml); the kernel's own
// tests use package eventstest.
//
// A breaking payload change is a new type (….v2): consumers reject versions
// they do not know as permanent errors instead of misreading them. A
// payload's Validate reports every problem as a *ValidationError (matching
// ErrInvalidPayload), which New and the decoders return as permanent
// errors.
//
// # On the wire (Pub/Sub, binary mode)
//
// New builds the event; Encode turns it into a messaging.Message:
//
//	attributes:
//	  ce-specversion  1.0
//	  ce-id           3f0c…  (UUID; unique per event, stable across redelivery)
//	  ce-source       //example.com/<producer>
//	  ce-type         <registered type>, e.g. com.example.test.thing.created.v1
//	  ce-subject      <aggregate id>        (Payload.AggregateID)
//	  ce-time         2026-05-01T12:30:45.123456789Z
//	  ce-dataschema   https://example.com/schemas/events/<type>.json
//	  ce-<ext>        any extension, e.g. ce-traceparent
//	  Content-Type    application/json
//	  traceparent     00-<trace>-<span>-01  (when the context carries a trace)
//	  tracestate      …                     (when it has one)
//	data:         the payload as JSON, e.g. {"thing_id":"…","name":"…",…}
//	ordering key: the subject
//
// The trace is written twice on purpose: as the plain "traceparent"
// attribute that generic Pub/Sub tooling understands, and as the CloudEvents
// distributed-tracing extension (ce-traceparent), which survives a push
// through Google's front end, where a "traceparent" request header may be
// replaced by the front end's own.
//
// # Receiving (DecodeRequest)
//
// Functions register as plain HTTP functions and call DecodeRequest, which
// accepts both shapes Google produces:
//
//  1. No-wrapper push with write_metadata (what our Terraform creates):
//     each message attribute arrives as a request header of the same name,
//     the body is the message data, and the metadata arrives as
//     x-goog-pubsub-subscription-name, x-goog-pubsub-message-id,
//     x-goog-pubsub-publish-time, x-goog-pubsub-ordering-key and, when
//     present, x-goog-pubsub-delivery-attempt. This is a binary-mode
//     CloudEvent over HTTP. Go canonicalises header names (Ce-Id), so the
//     reconstructed attribute names are lower-cased (ce-id, traceparent,
//     dlq-reason), except Content-Type; transport headers (Authorization, User-Agent,
//     X-Forwarded-*, x-goog-*, …) are not attributes and are dropped.
//  2. Eventarc's google.cloud.pubsub.topic.v1.messagePublished event, binary
//     or structured, whose data is
//     {"message":{"data":"<base64>","attributes":{…},"messageId":"…",
//     "publishTime":"…","orderingKey":"…"},"subscription":"…"}; the inner
//     message's ce-* attributes and data form the domain event.
//
// A structured-mode domain event (Content-Type
// application/cloudevents+json) is accepted as well.
//
// Incoming.Message is the original Pub/Sub message (for an Eventarc
// envelope, the inner one), so a dead-letter publisher can forward it
// unchanged; it is returned even when decoding fails. Every content error
// (oversized body, not a CloudEvent, missing or malformed attributes, wrong
// content type, unknown type or version, malformed JSON, invalid payload,
// subject not matching the payload) is permanent (retry.ErrPermanent) with
// a message saying what was wrong: the caller dead-letters and
// acknowledges instead of letting Pub/Sub retry a poison message.
//
// NewPushRequest builds the no-wrapper push request for a message, for the
// local dispatcher and end-to-end tests.
//
// Everything here is safe for concurrent use: the registry is fixed at
// init and payloads are immutable values.
//
// Incoming.Context prepares the handler's context: a child span of the
// event's trace (or, when the event has none, of the push request's own
// X-Cloud-Trace-Context) (read by the log handler and by Encode for every outgoing
// message) and log labels (event id and type, ordering key, delivery
// attempt, subscription, message id).
package events
