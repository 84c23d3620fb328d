output "uri" {
  description = "URL of the Cloud Run service, callable by the invokers once they are granted."
  value       = var.service.uri
  depends_on  = [google_cloud_run_v2_service_iam_member.invokers]

  precondition {
    condition     = var.service.ingress == null || (local.lb ? var.service.ingress == "ALLOW_INTERNAL_AND_GCLB" : var.service.ingress == "ALLOW_ALL")
    error_message = "A service behind the load_balancer needs ALLOW_INTERNAL_AND_GCLB ingress; without one it needs ALLOW_ALL (IAM-authenticated direct access), or no client can reach it."
  }
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

output "ip_address" {
  description = "External IP address of the load balancer (point the domains' DNS A records at it), or null without one."
  value       = one(google_compute_global_address.lb[*].address)
}

output "urls" {
  description = "HTTPS URLs of the load balancer's domains, or [] without one."
  value       = local.lb ? [for d in var.load_balancer.domains : "https://${d}"] : []
}
