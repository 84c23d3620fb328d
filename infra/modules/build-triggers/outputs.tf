output "ids" {
  description = "Trigger ids by function name (plus \"_infra\" for infrastructure changes)."
  value       = { for k, t in google_cloudbuild_trigger.default : k => t.id }
}

output "names" {
  description = "Trigger names by function name (plus \"_infra\" for infrastructure changes)."
  value       = { for k, t in google_cloudbuild_trigger.default : k => t.name }
}
