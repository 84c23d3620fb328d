output "id" {
  description = "Instance id."
  value       = google_sql_database_instance.default.id
}

output "name" {
  description = "Instance name."
  value       = google_sql_database_instance.default.name
}

output "connection_name" {
  description = "Connection name (<project>:<region>:<name>) for the Cloud SQL connectors."
  value       = google_sql_database_instance.default.connection_name
}

output "private_ip_address" {
  description = "Private IP address of the instance."
  value       = google_sql_database_instance.default.private_ip_address
}

output "database" {
  description = "Name of the application database, once it exists."
  value       = google_sql_database.default.name
}

output "cloudsql" {
  description = "Connection settings for the event-function cloudsql input (add enabled from the manifest)."
  value = {
    instance_name            = google_sql_database_instance.default.name
    instance_connection_name = google_sql_database_instance.default.connection_name
    database                 = google_sql_database.default.name
  }
}

output "iam_users" {
  description = "Names of the extra IAM database users by key."
  value       = { for k, u in google_sql_user.iam : k => u.name }
}

output "migrations" {
  description = "The migration job: job name, its location and the migrator's service account email and database user; null without var.migrations."
  value = local.migrate ? {
    job             = google_cloud_run_v2_job.migrate[0].name
    location        = google_cloud_run_v2_job.migrate[0].location
    service_account = google_service_account.migrator[0].email
    database_user   = google_sql_user.migrator[0].name
  } : null
}
