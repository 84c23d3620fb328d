locals {
  duration = "${var.thresholds.duration_seconds}s"

  channels = { for team in distinct(concat(
    [for f in var.functions : f.team],
    [for t in var.topics : t.labels.team],
    var.database == null ? [] : [var.database.team],
  )) : team => lookup(var.notification_channels, team, var.default_notification_channels) }

  # Functions with push subscriptions, by owning team: their parked
  # ordering keys alert the team.
  consumers_by_team = { for team in distinct([for f in var.functions : f.team if length(f.subscriptions) > 0]) :
    team => sort([for name, f in var.functions : name if f.team == team && length(f.subscriptions) > 0])
  }

  dead_letter_topics = { for name, t in var.topics : name => t if lookup(t.labels, "kind", "") == "dead-letter" }

  # Every push subscription plus retained dead-letter subscriptions, with
  # the team that must react.
  subscriptions = merge(
    merge([for fn, f in var.functions : { for topic, sub in f.subscriptions : sub => { team = f.team, function = fn } }]...),
    { for name, t in var.topics : t.retained_subscription => { team = t.labels.team, function = lookup(t.labels, "function", "") } if t.retained_subscription != null },
  )

}

resource "google_monitoring_alert_policy" "dead_letters" {
  for_each = local.dead_letter_topics

  project               = var.project_id
  display_name          = "[${var.env}] Messages dead-lettered to ${each.key}"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.channels[each.value.labels.team]
  user_labels           = { team = each.value.labels.team, env = var.env, function = lookup(each.value.labels, "function", "none") }

  conditions {
    display_name = "Messages published to ${each.key}"
    condition_threshold {
      filter          = "resource.type = \"pubsub_topic\" AND resource.labels.topic_id = \"${each.key}\" AND metric.type = \"pubsub.googleapis.com/topic/send_message_operation_count\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Messages reached the dead-letter topic `${each.key}`: the consumer gave up on them (permanent error or too many attempts). They are archived in BigQuery (`dead_letters`) unless this is the archive's own topic, whose messages wait in its retained subscription. Inspect and replay with the operator CLI (tools/cmd/eventctl, see docs/demo.md)."
  }
}

resource "google_monitoring_alert_policy" "oldest_unacked" {
  for_each = local.subscriptions

  project               = var.project_id
  display_name          = "[${var.env}] Backlog age of ${each.key}"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels[each.value.team]
  user_labels           = { team = each.value.team, env = var.env, function = each.value.function == "" ? "none" : each.value.function }

  conditions {
    display_name = "Oldest unacked message older than ${var.thresholds.oldest_unacked_age_seconds}s"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${each.key}\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.thresholds.oldest_unacked_age_seconds
      duration        = local.duration

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Subscription `${each.key}` is falling behind: its oldest message waits for more than ${var.thresholds.oldest_unacked_age_seconds}s. Check the consumer's errors and scaling."
  }
}

resource "google_monitoring_alert_policy" "error_ratio" {
  for_each = var.functions

  project               = var.project_id
  display_name          = "[${var.env}] 5xx ratio of ${each.key}"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.channels[each.value.team]
  user_labels           = { team = each.value.team, env = var.env, function = each.key }

  conditions {
    display_name = "More than ${var.thresholds.error_ratio * 100}% of requests fail with 5xx"
    condition_threshold {
      filter             = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${each.value.service_name}\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
      denominator_filter = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${each.value.service_name}\" AND metric.type = \"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.thresholds.error_ratio
      duration           = local.duration

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "`${each.key}` answers more than ${var.thresholds.error_ratio * 100}% of requests with 5xx. For event functions every 5xx is a redelivery; sustained failures end in the dead-letter topic."
  }
}

resource "google_monitoring_alert_policy" "cloudsql" {
  count = var.database == null ? 0 : 1

  project               = var.project_id
  display_name          = "[${var.env}] Cloud SQL ${var.database.instance_name} health"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.channels[var.database.team]
  user_labels           = { team = var.database.team, env = var.env, function = "none" }

  conditions {
    display_name = "Instance is down"
    condition_threshold {
      filter          = "resource.type = \"cloudsql_database\" AND resource.labels.database_id = \"${var.project_id}:${var.database.instance_name}\" AND metric.type = \"cloudsql.googleapis.com/database/up\""
      comparison      = "COMPARISON_LT"
      threshold_value = 1
      duration        = local.duration

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MIN"
      }
    }
  }

  conditions {
    display_name = "CPU above ${var.thresholds.sql_cpu_utilization * 100}%"
    condition_threshold {
      filter          = "resource.type = \"cloudsql_database\" AND resource.labels.database_id = \"${var.project_id}:${var.database.instance_name}\" AND metric.type = \"cloudsql.googleapis.com/database/cpu/utilization\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.thresholds.sql_cpu_utilization
      duration        = local.duration

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MEAN"
      }
    }
  }

  conditions {
    display_name = "Disk above ${var.thresholds.sql_disk_utilization * 100}%"
    condition_threshold {
      filter          = "resource.type = \"cloudsql_database\" AND resource.labels.database_id = \"${var.project_id}:${var.database.instance_name}\" AND metric.type = \"cloudsql.googleapis.com/database/disk/utilization\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.thresholds.sql_disk_utilization
      duration        = local.duration

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MEAN"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Cloud SQL instance `${var.database.instance_name}` is down or saturated. Every function with `database: true` depends on it."
  }
}

resource "google_monitoring_dashboard" "default" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "Event platform (${var.env})"
    mosaicLayout = {
      columns = 12
      tiles = [
        for i, w in [
          { title = "Oldest unacked message age by subscription", filter = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\"", aligner = "ALIGN_MAX", group = "resource.label.subscription_id", reducer = "REDUCE_SUM" },
          { title = "Undelivered messages by subscription", filter = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\"", aligner = "ALIGN_MEAN", group = "resource.label.subscription_id", reducer = "REDUCE_SUM" },
          { title = "Messages published by topic", filter = "resource.type = \"pubsub_topic\" AND metric.type = \"pubsub.googleapis.com/topic/send_message_operation_count\"", aligner = "ALIGN_RATE", group = "resource.label.topic_id", reducer = "REDUCE_SUM" },
          { title = "Dead-lettered messages by subscription", filter = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\"", aligner = "ALIGN_RATE", group = "resource.label.subscription_id", reducer = "REDUCE_SUM" },
          { title = "Requests by service and response class", filter = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\"", aligner = "ALIGN_RATE", group = "resource.label.service_name", reducer = "REDUCE_SUM" },
          { title = "Request latency p95 by service", filter = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_latencies\"", aligner = "ALIGN_PERCENTILE_95", group = "resource.label.service_name", reducer = "REDUCE_MAX" },
          { title = "Instances by service", filter = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/container/instance_count\"", aligner = "ALIGN_MAX", group = "resource.label.service_name", reducer = "REDUCE_SUM" },
          { title = "Cloud SQL CPU utilisation", filter = "resource.type = \"cloudsql_database\" AND metric.type = \"cloudsql.googleapis.com/database/cpu/utilization\"", aligner = "ALIGN_MEAN", group = "resource.label.database_id", reducer = "REDUCE_SUM" },
          ] : {
          xPos   = (i % 2) * 6
          yPos   = floor(i / 2) * 4
          width  = 6
          height = 4
          widget = {
            title = w.title
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = w.filter
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = w.aligner
                      crossSeriesReducer = w.reducer
                      groupByFields      = [w.group]
                    }
                  }
                }
              }]
            }
          }
        }
      ]
    }
  })
}

# Outbox rows that block their ordering key: the relay logs a WARNING
# "outbox: row stuck" (shared/outbox.StuckMessage) on every failed attempt
# of a row older than its stuck threshold. One series per topic.
resource "google_logging_metric" "outbox_stuck_rows" {
  project = var.project_id
  name    = "outbox_stuck_rows"
  filter  = "severity=WARNING AND jsonPayload.message=\"outbox: row stuck\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Outbox rows stuck"
    labels {
      key        = "topic"
      value_type = "STRING"
    }
  }
  label_extractors = { topic = "EXTRACT(jsonPayload.topic)" }
}

resource "google_monitoring_alert_policy" "outbox_stuck" {
  for_each = { for name, t in var.topics : name => t if lookup(t.labels, "kind", "") == "domain" }

  project               = var.project_id
  display_name          = "[${var.env}] Outbox rows stuck on ${each.key}"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.channels[each.value.labels.team]
  user_labels           = { team = each.value.labels.team, env = var.env, function = "relay" }

  conditions {
    display_name = "Stuck outbox rows of ${each.key}"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.outbox_stuck_rows.name}\" AND metric.labels.topic = \"${each.key}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "An outbox row for `${each.key}` has failed to publish for longer than the relay's stuck threshold and blocks the later events of its ordering key. Inspect it with `eventctl outbox stuck`, then retry or park it (`eventctl outbox retry|park ID`; docs/failure-model.md)."
  }
}

# Deliveries that wait for a person: the handler logs error_class schema,
# permission, auth or database (shared/retry.ErrorClass) on a transient
# failure that no retry heals until a deploy or an operator fixes it.
resource "google_logging_metric" "needs_operator" {
  project = var.project_id
  name    = "deliveries_waiting_for_an_operator"
  filter  = "jsonPayload.error_class=(\"schema\" OR \"permission\" OR \"auth\" OR \"database\")"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Deliveries failing on schema, permission, auth or database"
    labels {
      key        = "function"
      value_type = "STRING"
    }
    labels {
      key        = "error_class"
      value_type = "STRING"
    }
  }
  label_extractors = {
    function    = "EXTRACT(labels.function)"
    error_class = "EXTRACT(jsonPayload.error_class)"
  }
}

resource "google_monitoring_alert_policy" "needs_operator" {
  for_each = var.functions

  project               = var.project_id
  display_name          = "[${var.env}] ${each.key} waits for a schema, grant or credential"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.channels[each.value.team]
  user_labels           = { team = each.value.team, env = var.env, function = each.key }

  conditions {
    display_name = "Deliveries of ${each.key} failing on schema, permission, auth or database"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.needs_operator.name}\" AND metric.labels.function = \"${each.key}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = local.duration

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "`${each.key}` fails deliveries on a missing table or column, a revoked grant, a credential or a missing database (`error_class` in its logs). They are retried, not dead-lettered: fix the schema (run the migration), the grant or the credential and the backlog drains (docs/failure-model.md)."
  }
}

# Ordering keys parked behind a dead letter (shared/parking): the relay
# logs a WARNING "ordering keys parked behind a dead letter" (ParkedMessage
# in functions/relay/relay.go) every run, one per subscription with
# parked keys, with the number of keys and the age of the oldest.
locals {
  # The two distributions read from the relay's line: how many keys are
  # parked, and how old the oldest is.
  parked_metrics = {
    parked_keys            = { field = "parked_keys", unit = "1", display = "Parked ordering keys", scale = 1, buckets = 16 }
    parked_key_age_seconds = { field = "oldest_age_seconds", unit = "s", display = "Age of the oldest parked ordering key", scale = 60, buckets = 20 }
  }
}

resource "google_logging_metric" "parked" {
  for_each = local.parked_metrics

  project         = var.project_id
  name            = each.key
  filter          = "severity=WARNING AND jsonPayload.message=\"ordering keys parked behind a dead letter\""
  value_extractor = "EXTRACT(jsonPayload.${each.value.field})"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = each.value.unit
    display_name = each.value.display
    labels {
      key        = "consumer"
      value_type = "STRING"
    }
    labels {
      key        = "subscription"
      value_type = "STRING"
    }
  }
  label_extractors = {
    consumer     = "EXTRACT(jsonPayload.consumer)"
    subscription = "EXTRACT(jsonPayload.subscription)"
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = each.value.buckets
      growth_factor      = 2
      scale              = each.value.scale
    }
  }
}

# One policy per owning team: a key of one of its consumers has been
# parked longer than thresholds.parked_key_age_seconds.
resource "google_monitoring_alert_policy" "parked_keys" {
  for_each = local.consumers_by_team

  project               = var.project_id
  display_name          = "[${var.env}] Ordering keys of ${each.key} parked behind a dead letter"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.channels[each.key]
  user_labels           = { team = each.key, env = var.env, function = "parked-keys" }

  conditions {
    display_name = "Oldest parked key of ${join(", ", each.value)}"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.parked["parked_key_age_seconds"].name}\" AND metric.labels.consumer = one_of(${join(", ", [for f in each.value : "\"${f}\""])})"
      comparison      = "COMPARISON_GT"
      threshold_value = var.thresholds.parked_key_age_seconds
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["metric.label.subscription"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A function of team `${each.key}` dead-lettered an event of an ordering key and parked the key: its later events wait, unapplied, until the dead letter is replayed or discarded. List them with `eventctl parked list`, fix the cause, then `eventctl parked replay SUBSCRIPTION KEY` (or `eventctl parked discard ... --reason`); docs/failure-model.md#parked-keys."
  }
}
