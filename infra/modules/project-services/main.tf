# Everything the platform needs before any function exists: APIs, the image
# repository, the identity that builds function images and the Pub/Sub
# service agent's address. The source bucket and the secret containers exist
# before the first pipeline run: the bootstrap module creates them.

locals {
  labels = merge(var.labels, { env = var.env })
  # The Pub/Sub service agent forwards dead letters and signs push tokens.
  pubsub_service_agent = "service-${data.google_project.default.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # The function builder writes build logs; everything else it may touch is
  # granted on the one repository and the one bucket (iam.tf), never
  # project-wide: no roles/cloudbuild.builds.builder, which reaches every
  # bucket of the project.
  builder_roles = toset(["roles/logging.logWriter"])
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

resource "google_artifact_registry_repository" "default" {
  project       = var.project_id
  location      = var.region
  repository_id = var.artifact_repository_id
  format        = "DOCKER"
  labels        = local.labels

  # KEEP wins over DELETE: the newest versions of every function's image
  # (the running revision's among them) stay, older ones go.
  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.image_retention.keep_count
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "${var.image_retention.delete_after_days * 86400}s"
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
