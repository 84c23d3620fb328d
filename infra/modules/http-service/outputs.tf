output "id" {
  description = "Function id of the service (projects/<p>/locations/<r>/functions/<name>)."
  value       = google_cloudfunctions2_function.default.id
  depends_on  = [google_cloud_run_v2_service_iam_member.invokers]
}

output "name" {
  description = "Service name."
  value       = google_cloudfunctions2_function.default.name
}

output "team" {
  description = "Owning team (for alert routing)."
  value       = var.team
}

output "uri" {
  description = "URL of the Cloud Run service, callable by the invokers once they are granted."
  value       = google_cloudfunctions2_function.default.service_config[0].uri
  depends_on  = [google_cloud_run_v2_service_iam_member.invokers]
}

output "service_name" {
  description = "Name of the underlying Cloud Run service (for metrics and alerts)."
  value       = google_cloudfunctions2_function.default.service_config[0].service
}

output "service_account_email" {
  description = "Email of the runtime service account."
  value       = google_service_account.default.email
  depends_on  = [google_project_iam_member.runtime, google_pubsub_topic_iam_member.publishes]
}

output "scheduler_jobs" {
  description = "Cloud Scheduler job ids by key."
  value       = { for k, j in google_cloud_scheduler_job.default : k => j.id }
}

output "database_user" {
  description = "PostgreSQL user name of the runtime service account, or null without database access."
  value       = one(google_sql_user.default[*].name)
}
