# Everything the platform needs before any function exists: APIs, the
# bucket of source archives, the image repository, the identity that builds
# function images, the Pub/Sub service agent's address and secret containers.

locals {
  labels      = merge(var.labels, { env = var.env })
  bucket_name = coalesce(var.source_bucket.name, "${var.project_id}-function-sources")
  # The Pub/Sub service agent forwards dead letters and signs push tokens.
  pubsub_service_agent = "service-${data.google_project.default.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  builder_roles = toset([
    "roles/cloudbuild.builds.builder",
    "roles/logging.logWriter",
    "roles/artifactregistry.writer",
  ])
}

data "google_project" "default" {
  project_id = var.project_id
}

resource "google_project_service" "default" {
  for_each = var.services

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_storage_bucket" "sources" {
  project                     = var.project_id
  name                        = local.bucket_name
  location                    = var.region
  labels                      = local.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.source_bucket.force_destroy

  versioning {
    enabled = true
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      days_since_noncurrent_time = var.source_bucket.noncurrent_age_days
    }
  }

  depends_on = [google_project_service.default]
}

resource "google_artifact_registry_repository" "default" {
  project       = var.project_id
  location      = var.region
  repository_id = var.artifact_repository_id
  format        = "DOCKER"
  labels        = local.labels

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  depends_on = [google_project_service.default]
}

resource "google_service_account" "builder" {
  project      = var.project_id
  account_id   = "function-builder"
  display_name = "Builds function images from source archives"

  depends_on = [google_project_service.default]
}

resource "google_secret_manager_secret" "default" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = each.value
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.default]
}
