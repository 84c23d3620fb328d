# What the pipeline needs before its first run, in one environment's
# project: the APIs the pipeline itself uses, the Terraform state bucket, the
# bucket of function archives (and promotion records), the secret
# containers, the cloud-builds topic, the ci and deployer identities and
# the build triggers. Applied once by someone with owner rights (see
# docs/infrastructure.md, "Bootstrap"); the one manual step afterwards is
# adding a version to each secret, which the deploy build checks.

locals {
  labels        = merge(var.labels, { env = var.env })
  state_bucket  = coalesce(var.state_bucket, "${var.project_id}-tfstate")
  source_bucket = coalesce(var.source_bucket.name, "${var.project_id}-function-sources")

  services = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "secretmanager.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
  ])

  # The ci account runs tests, dependency download, packaging and the
  # archive upload: it writes logs, and nothing else at project level.
  ci_project_roles = toset(["roles/logging.logWriter"])

  # The deployer applies the environment (every module of infra/modules)
  # and runs the migration job. Storage rights are on its buckets only.
  deployer_project_roles = toset([
    "roles/artifactregistry.admin",
    "roles/bigquery.admin",
    "roles/cloudfunctions.admin",
    "roles/cloudscheduler.admin",
    "roles/cloudsql.admin",
    "roles/compute.loadBalancerAdmin",
    "roles/compute.networkAdmin",
    "roles/compute.securityAdmin",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountUser",
    "roles/logging.logWriter",
    "roles/monitoring.editor",
    "roles/pubsub.admin",
    "roles/resourcemanager.projectIamAdmin",
    "roles/run.admin",
    "roles/secretmanager.admin",
    "roles/servicenetworking.networksAdmin",
    "roles/serviceusage.serviceUsageAdmin",
  ])
}

resource "google_project_service" "default" {
  for_each = local.services

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# Terraform state and saved plans (plans/<env>/<build id>/): the deployer's
# alone. Old state versions are kept for recovery, then expire.
resource "google_storage_bucket" "state" {
  project                     = var.project_id
  name                        = local.state_bucket
  location                    = var.region
  labels                      = local.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      num_newer_versions = 20
      with_state         = "ARCHIVED"
    }
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      age            = var.plan_retention_days
      matches_prefix = ["plans/"]
    }
  }

  depends_on = [google_project_service.default]
}

# Function archives (<function>-<sha256>.zip, content-addressed, so no
# versioning) and promotion records (promotions/<commit>). Archives older
# than archive_age_days are deleted: a deployed function does not need its
# archive until it is rebuilt, and the pipeline re-uploads a missing archive
# under the same name.
resource "google_storage_bucket" "sources" {
  project                     = var.project_id
  name                        = local.source_bucket
  location                    = var.region
  labels                      = local.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.source_bucket.force_destroy

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      age            = var.source_bucket.archive_age_days
      matches_suffix = [".zip"]
    }
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      age            = var.source_bucket.promotion_age_days
      matches_prefix = ["promotions/"]
    }
  }

  depends_on = [google_project_service.default]
}

# Images the ci build makes (the migrate tool), by commit.
resource "google_artifact_registry_repository" "pipeline" {
  project       = var.project_id
  location      = var.region
  repository_id = "pipeline"
  format        = "DOCKER"
  labels        = local.labels

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.default]
}

# Secret containers for the manifests' secret_env. Their values are the one
# manual step: gcloud secrets versions add <id> --data-file=-. The deploy
# build refuses to deploy while one has no enabled version.
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

# Cloud Build publishes every build's status to the topic of this name; the
# deploy and apply triggers listen on it.
resource "google_pubsub_topic" "build_events" {
  project = var.project_id
  name    = "cloud-builds"
  labels  = local.labels

  depends_on = [google_project_service.default]
}

resource "google_service_account" "ci" {
  project      = var.project_id
  account_id   = "ci-runner"
  display_name = "Pipeline: tests, packaging, upload (no deploy rights)"

  depends_on = [google_project_service.default]
}

resource "google_service_account" "deployer" {
  project      = var.project_id
  account_id   = "deployer"
  display_name = "Pipeline: plan and apply of the ${var.env} environment"

  depends_on = [google_project_service.default]
}

module "triggers" {
  source = "../build-triggers"

  project_id               = var.project_id
  env                      = var.env
  region                   = var.region
  github                   = var.github
  ref                      = var.ref
  default_branch           = var.default_branch
  previous_promotions      = var.previous_promotions
  require_approval         = var.require_approval
  ci_service_account       = google_service_account.ci.id
  deployer_service_account = google_service_account.deployer.id
  build_events_topic       = google_pubsub_topic.build_events.id
  state_bucket             = google_storage_bucket.state.name
  source_bucket            = google_storage_bucket.sources.name

  depends_on = [
    google_project_iam_member.ci,
    google_project_iam_member.deployer,
    google_storage_bucket_iam_member.ci_sources,
    google_storage_bucket_iam_member.deployer_state,
  ]
}
