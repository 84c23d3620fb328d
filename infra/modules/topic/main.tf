locals {
  labels = merge(var.labels, { env = var.env })
}

resource "google_pubsub_topic" "default" {
  project                    = var.project_id
  name                       = var.name
  labels                     = local.labels
  message_retention_duration = var.message_retention_duration

  dynamic "schema_settings" {
    for_each = var.schema == null ? [] : [var.schema]
    content {
      schema   = schema_settings.value.schema
      encoding = schema_settings.value.encoding
    }
  }
}

resource "google_pubsub_subscription" "retained" {
  count = var.retained_subscription == null ? 0 : 1

  project                    = var.project_id
  name                       = "${var.name}--retained"
  topic                      = google_pubsub_topic.default.id
  labels                     = local.labels
  ack_deadline_seconds       = var.retained_subscription.ack_deadline_seconds
  message_retention_duration = var.retained_subscription.message_retention_duration
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}
