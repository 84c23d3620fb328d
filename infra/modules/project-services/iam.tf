resource "google_project_iam_member" "builder" {
  for_each = local.builder_roles

  project = var.project_id
  role    = each.value
  member  = google_service_account.builder.member
}

# Reads the function archives of this bucket only.
resource "google_storage_bucket_iam_member" "builder" {
  bucket = var.source_bucket
  role   = "roles/storage.objectViewer"
  member = google_service_account.builder.member
}

# Pushes function images to this repository only.
resource "google_artifact_registry_repository_iam_member" "builder" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.default.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.builder.member
}
