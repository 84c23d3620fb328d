// Package observability writes logs in Cloud Logging's structured format
// and carries W3C trace context from an incoming event to every outgoing
// message.
//
// # Log lines
//
// Handler is a log/slog handler that writes one JSON object per line to
// stdout (Cloud Run and Cloud Functions forward stdout to Cloud Logging and
// lift these fields into the LogEntry):
//
//	{
//	  "time": "2026-05-01T12:00:00.123456789Z",
//	  "severity": "ERROR",                        // DEBUG, INFO, WARNING, ERROR
//	  "message": "gateway failed",
//	  "logging.googleapis.com/trace": "projects/PROJECT/traces/TRACE_ID",
//	  "logging.googleapis.com/spanId": "00f067aa0ba902b7",
//	  "logging.googleapis.com/trace_sampled": true,
//	  "logging.googleapis.com/labels": {"function": "payment", "event_id": "...",
//	      "event_type": "...", "ordering_key": "...", "delivery_attempt": "3"},
//	  "logging.googleapis.com/sourceLocation": {"file": "...", "line": "42", "function": "..."},
//	  "err": "..."                                // the record's own attributes
//	}
//
// The trace fields come from the context given to the logger's *Context
// methods (WithTrace), the labels from HandlerOptions.Labels overlaid with
// the context's labels (WithLabels). sourceLocation is written for ERROR
// lines, or for every line with HandlerOptions.AddSource. The project id is
// HandlerOptions.ProjectID, defaulting to $GOOGLE_CLOUD_PROJECT.
//
// # Trace context
//
// A trace travels as a W3C traceparent "00-<32 hex trace id>-<16 hex span
// id>-<2 hex flags>" (plus an optional tracestate). Incoming HTTP requests
// may instead carry Google's X-Cloud-Trace-Context
// "TRACE_ID/DECIMAL_SPAN_ID;o=1"; TraceFromHeader reads either. Events carry
// it as the Pub/Sub attribute "traceparent" and as the CloudEvents
// distributed-tracing extension "traceparent" (attribute "ce-traceparent");
// package events reads it from an incoming event and, when encoding an
// outgoing event, writes NewChildSpan of the context's trace: the same trace
// id, a new span id. This package does not import events.
package observability
