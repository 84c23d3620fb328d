output "state_bucket" {
  description = "Bucket of the Terraform state and the saved plans: terraform init -backend-config=bucket=<this>."
  value       = google_storage_bucket.state.name
  depends_on  = [google_storage_bucket_iam_member.deployer_state]
}

output "source_bucket" {
  description = "Bucket of function archives and promotion records: the environment's source_bucket."
  value       = google_storage_bucket.sources.name
  depends_on  = [google_storage_bucket_iam_member.ci_sources]
}

output "secrets" {
  description = "Secret container ids by secret id; each needs a version before the first deploy."
  value       = { for k, s in google_secret_manager_secret.default : k => s.id }
}

output "ci_service_account" {
  description = "Email of the ci account (no deploy rights)."
  value       = google_service_account.ci.email
}

output "deployer_service_account" {
  description = "Email of the deployer account (the only one that applies)."
  value       = google_service_account.deployer.email
}

output "pipeline_repository" {
  description = "Artifact Registry repository of the images the ci build makes (projects/<p>/locations/<r>/repositories/pipeline)."
  value       = google_artifact_registry_repository.pipeline.id
}

output "triggers" {
  description = "Build trigger names by role: ci, deploy and (prod) apply."
  value       = module.triggers.names
}
