output "alert_policies" {
  description = "Alert policy ids by kind (dead_letters, oldest_unacked, error_ratio, cloudsql, outbox_stuck, needs_operator, parked_keys) and watched name (the team for parked_keys)."
  value = {
    outbox_stuck   = { for k, p in google_monitoring_alert_policy.outbox_stuck : k => p.id }
    needs_operator = { for k, p in google_monitoring_alert_policy.needs_operator : k => p.id }
    parked_keys    = { for k, p in google_monitoring_alert_policy.parked_keys : k => p.id }
    dead_letters   = { for k, p in google_monitoring_alert_policy.dead_letters : k => p.id }
    oldest_unacked = { for k, p in google_monitoring_alert_policy.oldest_unacked : k => p.id }
    error_ratio    = { for k, p in google_monitoring_alert_policy.error_ratio : k => p.id }
    cloudsql       = { for k, p in google_monitoring_alert_policy.cloudsql : var.database.instance_name => p.id }
  }
}

output "dashboard_id" {
  description = "Dashboard id."
  value       = google_monitoring_dashboard.default.id
}

output "routing" {
  description = "Notification channels used per team (after defaults)."
  value       = local.channels
}
