locals {
  runtime_member = "serviceAccount:${google_service_account.default.email}"

  # Project roles every function needs to write logs, metrics and traces.
  runtime_roles = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/cloudtrace.agent",
  ])

  cloudsql_roles = var.cloudsql != null ? toset(["roles/cloudsql.client", "roles/cloudsql.instanceUser"]) : toset([])
}

resource "google_project_iam_member" "runtime" {
  for_each = local.runtime_roles

  project = var.project_id
  role    = each.value
  member  = local.runtime_member
}

# Cloud SQL roles are project roles; the condition limits them to the one
# instance the function uses.
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

resource "google_bigquery_dataset_iam_member" "writer" {
  count = var.bigquery != null ? 1 : 0

  project    = var.project_id
  dataset_id = var.bigquery.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.runtime_member
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

# The handler publishes permanent failures straight to its dead-letter topic.
resource "google_pubsub_topic_iam_member" "dead_letter_runtime" {
  count = local.event ? 1 : 0

  project = var.project_id
  topic   = var.topics[local.dead_letter_topic].name
  role    = "roles/pubsub.publisher"
  member  = local.runtime_member
}

# Without these two grants dead-lettering silently does nothing.
resource "google_pubsub_topic_iam_member" "dead_letter_service_agent" {
  count = local.event ? 1 : 0

  project = var.project_id
  topic   = var.topics[local.dead_letter_topic].name
  role    = "roles/pubsub.publisher"
  member  = local.agent_member
}

resource "google_pubsub_subscription_iam_member" "service_agent" {
  for_each = google_pubsub_subscription.default

  project      = var.project_id
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.agent_member
}

# The push identity may invoke this function's Cloud Run service and
# nothing else.
resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  count = local.event ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.default.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push[0].email}"
}

# The Pub/Sub service agent mints the OIDC tokens of the push identity.
resource "google_service_account_iam_member" "push_token_creator" {
  count = local.event ? 1 : 0

  service_account_id = google_service_account.push[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.agent_member
}

# Direct VPC egress: the runtime identity uses the egress subnetwork (Google's
# Direct VPC page asks for Compute Network User), on that subnetwork only.
resource "google_compute_subnetwork_iam_member" "egress" {
  count = var.network == null ? 0 : 1

  project    = var.project_id
  region     = coalesce(var.network.subnetwork_region, var.region)
  subnetwork = var.network.subnetwork
  role       = "roles/compute.networkUser"
  member     = local.runtime_member
}
