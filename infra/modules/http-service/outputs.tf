output "uri" {
  description = "URL of the Cloud Run service, callable by the invokers once they are granted."
  value       = var.service.uri
  depends_on  = [google_cloud_run_v2_service_iam_member.invokers]
}

output "scheduler_jobs" {
  description = "Cloud Scheduler job ids by key."
  value       = { for k, j in google_cloud_scheduler_job.default : k => j.id }
}

output "scheduler_service_account_email" {
  description = "Email of the scheduler's OIDC identity, or null without scheduled jobs."
  value       = one(google_service_account.scheduler[*].email)
  depends_on  = [google_cloud_run_v2_service_iam_member.scheduler]
}
