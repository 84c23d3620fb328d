# An HTTP service (manifest kind: http) on Cloud Run, built from the same
# kind of source archive as the event functions (Cloud Functions Gen2 builds
# it and runs it as a Cloud Run service), plus Cloud Scheduler jobs that
# call its endpoints with an OIDC token (the outbox relay).

locals {
  sa_stem = length(var.name) <= 24 ? var.name : "${substr(var.name, 0, 19)}-${substr(sha256(var.name), 0, 4)}"

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
    var.cloudsql.enabled ? {
      DB_INSTANCE_CONNECTION_NAME = var.cloudsql.instance_connection_name
      DB_NAME                     = var.cloudsql.database
      DB_USER                     = local.db_user
      DB_IAM_AUTH                 = "true"
      DB_IP_TYPE                  = "PRIVATE"
    } : {},
  )
}

resource "google_service_account" "default" {
  project      = var.project_id
  account_id   = "svc-${local.sa_stem}"
  display_name = "Service ${var.name} (runtime)"
}

resource "google_service_account" "scheduler" {
  count = length(var.scheduled_jobs) > 0 ? 1 : 0

  project      = var.project_id
  account_id   = "sched-${local.sa_stem}"
  display_name = "Service ${var.name} (scheduler)"
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
      condition     = alltrue([for t in var.publishes : contains(keys(var.topics), t)])
      error_message = "Every topic the service publishes to must be in var.topics (topics.yaml)."
    }
  }

  depends_on = [
    google_project_iam_member.runtime,
    google_project_iam_member.cloudsql,
    google_secret_manager_secret_iam_member.runtime,
    google_sql_user.default,
  ]
}

resource "google_sql_user" "default" {
  count = var.cloudsql.enabled ? 1 : 0

  project        = var.project_id
  instance       = var.cloudsql.instance_name
  name           = local.db_user
  type           = "CLOUD_IAM_SERVICE_ACCOUNT"
  database_roles = var.cloudsql.database_roles
}

resource "google_cloud_scheduler_job" "default" {
  for_each = var.scheduled_jobs

  project          = var.project_id
  region           = var.region
  name             = "${var.name}-${each.key}"
  schedule         = each.value.schedule
  time_zone        = each.value.time_zone
  attempt_deadline = each.value.attempt_deadline

  retry_config {
    retry_count = each.value.retry_count
  }

  http_target {
    http_method = each.value.http_method
    uri         = "${google_cloudfunctions2_function.default.service_config[0].uri}${each.value.path}"
    body        = each.value.body == "" ? null : base64encode(each.value.body)

    oidc_token {
      service_account_email = google_service_account.scheduler[0].email
      audience              = google_cloudfunctions2_function.default.service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.scheduler]
}
