locals {
  runtime_member = "serviceAccount:${google_service_account.default.email}"

  runtime_roles = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/cloudtrace.agent",
  ])

  cloudsql_roles = var.cloudsql.enabled ? toset(["roles/cloudsql.client", "roles/cloudsql.instanceUser"]) : toset([])
}

resource "google_project_iam_member" "runtime" {
  for_each = local.runtime_roles

  project = var.project_id
  role    = each.value
  member  = local.runtime_member
}

resource "google_project_iam_member" "cloudsql" {
  for_each = local.cloudsql_roles

  project = var.project_id
  role    = each.value
  member  = local.runtime_member

  condition {
    title      = "only-${var.cloudsql.instance_name}"
    expression = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name == \"projects/${var.project_id}/instances/${var.cloudsql.instance_name}\""
  }
}

resource "google_secret_manager_secret_iam_member" "runtime" {
  for_each = toset([for k, v in var.secret_environment : v.secret])

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_member
}

resource "google_pubsub_topic_iam_member" "publishes" {
  for_each = toset(var.publishes)

  project = var.project_id
  topic   = var.topics[each.value].name
  role    = "roles/pubsub.publisher"
  member  = local.runtime_member
}

resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = var.invokers

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.default.service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_v2_service_iam_member" "scheduler" {
  count = length(var.scheduled_jobs) > 0 ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.default.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler[0].email}"
}
