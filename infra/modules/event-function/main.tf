# One Cloud Functions Gen2 function per manifest. A function with a trigger
# is fed by Terraform-owned push subscriptions (docs/infrastructure.md,
# "Delivery wiring"): no Eventarc trigger, because a trigger's subscription
# cannot get a dead-letter topic, backoff or ordering. With trigger = null it
# is an HTTP function (the orders API); the http-service module adds its
# callers and, optionally, a load balancer.

locals {
  event             = var.trigger != null
  subscriptions     = local.event ? var.trigger.subscriptions : {}
  dead_letter_topic = local.event ? var.trigger.dead_letter_topic : null
  agent_member      = local.event ? "serviceAccount:${var.trigger.pubsub_service_agent}" : null

  # Service account ids are 6-30 characters: "fn-"/"push-" + 25 for a
  # cloudevent function, "svc-" (and http-service's "sched-") + 24 for an
  # http one. Long names are shortened with a stable hash, never a random
  # suffix.
  account    = local.event ? { prefix = "fn", title = "Function", stem_max = 25 } : { prefix = "svc", title = "Service", stem_max = 24 }
  stem_short = local.account.stem_max - 5
  sa_stem    = length(var.name) <= local.account.stem_max ? var.name : "${substr(var.name, 0, local.stem_short)}-${substr(sha256(var.name), 0, 4)}"

  labels = merge(var.labels, {
    team     = var.team
    function = var.name
    env      = var.env
  })

  db_user = trimsuffix(google_service_account.default.email, ".gserviceaccount.com")

  platform_env = merge(
    {
      ENV                  = var.env
      GOOGLE_CLOUD_PROJECT = var.project_id
      FUNCTION_NAME        = var.name
      LOG_EXECUTION_ID     = "true"
    },
    local.event ? {
      DEAD_LETTER_TOPIC = local.dead_letter_topic
    } : {},
    var.cloudsql != null ? {
      DB_INSTANCE_CONNECTION_NAME = var.cloudsql.instance_connection_name
      DB_NAME                     = var.cloudsql.database
      DB_USER                     = local.db_user
      DB_IAM_AUTH                 = "true"
      DB_IP_TYPE                  = "PRIVATE"
      DB_MAX_CONNS                = tostring(var.cloudsql.pool_size)
    } : {},
    var.bigquery != null ? {
      BIGQUERY_PROJECT = var.project_id
      BIGQUERY_DATASET = var.bigquery.dataset_id
    } : {},
  )
}

resource "google_service_account" "default" {
  project      = var.project_id
  account_id   = "${local.account.prefix}-${local.sa_stem}"
  display_name = "${local.account.title} ${var.name} (runtime)"
}

resource "google_service_account" "push" {
  count = local.event ? 1 : 0

  project      = var.project_id
  account_id   = "push-${local.sa_stem}"
  display_name = "Function ${var.name} (Pub/Sub push)"
}

resource "google_cloudfunctions2_function" "default" {
  project  = var.project_id
  location = var.region
  name     = var.name
  labels   = local.labels

  build_config {
    runtime           = var.runtime
    entry_point       = var.entry_point
    service_account   = var.build.service_account
    docker_repository = var.build.docker_repository

    source {
      storage_source {
        bucket = var.source_archive.bucket
        object = var.source_archive.object
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.default.email
    ingress_settings                 = var.ingress
    all_traffic_on_latest_revision   = true
    available_memory                 = var.resources.memory
    available_cpu                    = var.resources.cpu
    max_instance_request_concurrency = var.resources.concurrency
    min_instance_count               = coalesce(var.min_instances, var.resources.min_instances)
    max_instance_count               = var.resources.max_instances
    timeout_seconds                  = var.resources.timeout_seconds
    environment_variables            = merge(var.environment, local.platform_env)
    direct_vpc_egress                = var.network == null ? null : "VPC_EGRESS_PRIVATE_RANGES_ONLY"

    dynamic "direct_vpc_network_interface" {
      for_each = var.network == null ? [] : [var.network]
      content {
        # Names, not resource paths: the Cloud Run API takes names here.
        network    = direct_vpc_network_interface.value.network
        subnetwork = direct_vpc_network_interface.value.subnetwork
      }
    }

    dynamic "secret_environment_variables" {
      for_each = var.secret_environment
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret
        version    = secret_environment_variables.value.version
      }
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for t in concat(var.publishes, keys(local.subscriptions), local.event ? [local.dead_letter_topic] : []) : contains(keys(var.topics), t)])
      error_message = "Every topic the function publishes to, consumes or dead-letters to must be in var.topics (topics.yaml plus the dead-letter topics)."
    }
    precondition {
      condition     = !local.event || (var.ingress == "ALLOW_INTERNAL_ONLY" && var.resources.timeout_seconds <= 540)
      error_message = "A function with a trigger is fed by push: its ingress must be ALLOW_INTERNAL_ONLY and its resources.timeout_seconds at most 540."
    }
  }

  # The runtime identity must hold its grants before the first instance starts.
  depends_on = [
    google_project_iam_member.runtime,
    google_project_iam_member.cloudsql,
    google_secret_manager_secret_iam_member.runtime,
    google_sql_user.default,
    google_compute_subnetwork_iam_member.egress,
  ]
}

# One push subscription per consumed topic, named "<function>--<topic>"
# (manifest.SubscriptionID). The body is the raw message (no wrapper) and
# every attribute plus the x-goog-pubsub-* metadata arrives as a header, so
# the function receives a binary-mode CloudEvent.
resource "google_pubsub_subscription" "default" {
  for_each = local.subscriptions

  project                    = var.project_id
  name                       = "${var.name}--${each.key}"
  topic                      = var.topics[each.key].id
  labels                     = local.labels
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  enable_message_ordering    = each.value.ordering
  filter                     = each.value.filter
  message_retention_duration = var.subscription_message_retention
  retain_acked_messages      = false

  push_config {
    push_endpoint = google_cloudfunctions2_function.default.service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.push[0].email
      audience              = google_cloudfunctions2_function.default.service_config[0].uri
    }

    no_wrapper {
      write_metadata = true
    }
  }

  dead_letter_policy {
    dead_letter_topic     = var.topics[local.dead_letter_topic].id
    max_delivery_attempts = each.value.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = each.value.min_backoff
    maximum_backoff = each.value.max_backoff
  }

  expiration_policy {
    ttl = ""
  }

  # Deliveries must be authorised and dead-lettering must work from the
  # first message on.
  depends_on = [
    google_cloud_run_v2_service_iam_member.push_invoker,
    google_service_account_iam_member.push_token_creator,
    google_pubsub_topic_iam_member.dead_letter_service_agent,
  ]
}

# The function's IAM database user. It is no superuser (a validation keeps
# cloudsqlsuperuser out); the migrator creates its tables' grants. Objects
# granted to the user keep PostgreSQL from dropping it, so destroying a
# function abandons the user instead of failing; the migrator's down
# migration or an operator drops it.
resource "google_sql_user" "default" {
  count = var.cloudsql != null ? 1 : 0

  project         = var.project_id
  instance        = var.cloudsql.instance_name
  name            = local.db_user
  type            = "CLOUD_IAM_SERVICE_ACCOUNT"
  database_roles  = var.cloudsql.database_roles
  deletion_policy = "ABANDON"
}
