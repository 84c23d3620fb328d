output "project_number" {
  description = "Project number."
  value       = data.google_project.default.number
}

output "pubsub_service_agent" {
  description = "Email of the Pub/Sub service agent (service-<number>@gcp-sa-pubsub.iam.gserviceaccount.com), once the APIs are enabled."
  value       = local.pubsub_service_agent
  depends_on  = [google_project_service.default]
}

output "source_bucket" {
  description = "Name of the bucket of function source archives, once the builder may read it."
  value       = var.source_bucket
  depends_on  = [google_storage_bucket_iam_member.builder]
}

output "artifact_repository" {
  description = "Artifact Registry repository id (projects/<p>/locations/<r>/repositories/<id>)."
  value       = google_artifact_registry_repository.default.id
}

output "build" {
  description = "Build settings for the event-function build input: the builder service account (id form) and the image repository."
  value = {
    service_account   = google_service_account.builder.id
    docker_repository = google_artifact_registry_repository.default.id
  }
  depends_on = [google_project_iam_member.builder, google_storage_bucket_iam_member.builder, google_artifact_registry_repository_iam_member.builder]
}

output "services" {
  description = "APIs enabled."
  value       = sort([for s in google_project_service.default : s.service])
}
