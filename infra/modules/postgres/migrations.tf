# Schema migrations run as a Cloud Run v2 job under the migrator service
# account, the only IAM database user with cloudsqlsuperuser: it owns every
# table and grants each function's user only its own (the contract of the
# migrate tool is in docs/infrastructure.md, "Database: roles, migrations, connections"). Function users
# never get cloudsqlsuperuser.

locals {
  migrate        = var.migrations != null
  migrator_user  = local.migrate ? trimsuffix(google_service_account.migrator[0].email, ".gserviceaccount.com") : null
  migrator_roles = local.migrate ? toset(["roles/cloudsql.client", "roles/cloudsql.instanceUser"]) : toset([])
}

resource "google_service_account" "migrator" {
  count = local.migrate ? 1 : 0

  project      = var.project_id
  account_id   = substr("migrate-${var.name}", 0, 30)
  display_name = "Schema migrations of ${var.name} (owner role)"
}

resource "google_project_iam_member" "migrator" {
  for_each = local.migrator_roles

  project = var.project_id
  role    = each.value
  member  = google_service_account.migrator[0].member

  condition {
    title      = "only-${var.name}"
    expression = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name == \"projects/${var.project_id}/instances/${var.name}\""
  }
}

resource "google_project_iam_member" "migrator_logs" {
  count = local.migrate ? 1 : 0

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.migrator[0].member
}

resource "google_compute_subnetwork_iam_member" "migrator" {
  count = local.migrate ? 1 : 0

  project    = var.project_id
  region     = var.region
  subnetwork = var.migrations.subnetwork
  role       = "roles/compute.networkUser"
  member     = google_service_account.migrator[0].member
}

# The owner: the only database user with cloudsqlsuperuser.
resource "google_sql_user" "migrator" {
  count = local.migrate ? 1 : 0

  project         = var.project_id
  instance        = google_sql_database_instance.default.name
  name            = local.migrator_user
  type            = "CLOUD_IAM_SERVICE_ACCOUNT"
  database_roles  = ["cloudsqlsuperuser"]
  deletion_policy = "ABANDON"
}

resource "google_cloud_run_v2_job" "migrate" {
  count = local.migrate ? 1 : 0

  project             = var.project_id
  location            = var.region
  name                = "${var.name}-migrate"
  labels              = local.labels
  deletion_protection = false

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.migrator[0].email
      timeout         = var.migrations.timeout
      max_retries     = 0

      containers {
        image   = var.migrations.image
        command = var.migrations.command

        dynamic "env" {
          for_each = {
            DB_INSTANCE_CONNECTION_NAME = google_sql_database_instance.default.connection_name
            DB_NAME                     = google_sql_database.default.name
            DB_USER                     = local.migrator_user
            DB_IAM_AUTH                 = "true"
            DB_IP_TYPE                  = "PRIVATE"
            MIGRATE_FUNCTION_USERS      = jsonencode(var.migrations.function_users)
          }
          content {
            name  = env.key
            value = env.value
          }
        }
      }

      vpc_access {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = var.migrations.network
          subnetwork = var.migrations.subnetwork
        }
      }
    }
  }

  # The pipeline sets the image of each release (gcloud run jobs update
  # --image) right before it executes the job; Terraform owns the rest.
  lifecycle {
    ignore_changes = [template[0].template[0].containers[0].image]
  }

  depends_on = [
    google_project_iam_member.migrator,
    google_sql_user.migrator,
    google_compute_subnetwork_iam_member.migrator,
  ]
}
