locals {
  labels = merge(var.labels, { env = var.env })

  flags = merge({
    "cloudsql.iam_authentication"         = "on"
    "log_connections"                     = "on"
    "log_disconnections"                  = "on"
    "log_lock_waits"                      = "on"
    "log_min_duration_statement"          = "1000"
    "idle_in_transaction_session_timeout" = "60000"
    "max_connections"                     = tostring(var.instance.max_connections)
  }, var.database_flags)

  client_connections = sum(concat([0], values(var.clients)))
}

resource "google_sql_database_instance" "default" {
  project             = var.project_id
  region              = var.region
  name                = var.name
  database_version    = var.database_version
  deletion_protection = var.instance.deletion_protection

  settings {
    tier                        = var.instance.tier
    edition                     = var.instance.edition
    availability_type           = var.instance.availability_type
    disk_size                   = var.instance.disk_size_gb
    disk_autoresize             = var.instance.disk_autoresize
    disk_type                   = "PD_SSD"
    deletion_protection_enabled = var.instance.deletion_protection
    user_labels                 = local.labels

    ip_configuration {
      ipv4_enabled                                  = false
      private_network                               = var.private_network
      ssl_mode                                      = var.ssl_mode
      enable_private_path_for_google_cloud_services = true
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = var.backup.start_time
      location                       = var.backup.location
      transaction_log_retention_days = var.backup.transaction_log_retention_days

      backup_retention_settings {
        retained_backups = var.backup.retained_backups
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = var.maintenance_window.day
      hour         = var.maintenance_window.hour
      update_track = var.maintenance_window.update_track
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = true
      record_client_address   = false
    }

    dynamic "database_flags" {
      for_each = local.flags
      content {
        name  = database_flags.key
        value = database_flags.value
      }
    }
  }

  lifecycle {
    precondition {
      condition     = local.client_connections + var.reserved_connections <= tonumber(local.flags["max_connections"])
      error_message = "The clients can open ${local.client_connections} connections (max instances x pool size, by client: ${jsonencode(var.clients)}) plus ${var.reserved_connections} reserved, more than max_connections ${local.flags["max_connections"]}: lower max_instances or pool sizes, or raise instance.max_connections (and the tier)."
    }
  }
}

resource "google_sql_database" "default" {
  project  = var.project_id
  instance = google_sql_database_instance.default.name
  name     = var.database
}

resource "google_sql_user" "iam" {
  for_each = var.iam_users

  project        = var.project_id
  instance       = google_sql_database_instance.default.name
  name           = each.value.type == "CLOUD_IAM_SERVICE_ACCOUNT" ? trimsuffix(each.value.email, ".gserviceaccount.com") : each.value.email
  type           = each.value.type
  database_roles = each.value.database_roles
  # Grants and owned objects keep PostgreSQL from dropping a role.
  deletion_policy = "ABANDON"
}
