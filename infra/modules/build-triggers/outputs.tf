output "ids" {
  description = "Trigger ids by role: ci, deploy and (with require_approval) apply."
  value = merge(
    { ci = google_cloudbuild_trigger.ci.id, deploy = google_cloudbuild_trigger.deploy.id },
    var.require_approval ? { apply = google_cloudbuild_trigger.apply[0].id } : {},
  )
}

output "names" {
  description = "Trigger names by role."
  value = merge(
    { ci = google_cloudbuild_trigger.ci.name, deploy = google_cloudbuild_trigger.deploy.name },
    var.require_approval ? { apply = google_cloudbuild_trigger.apply[0].name } : {},
  )
}
