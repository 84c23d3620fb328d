resource "google_project_iam_member" "builder" {
  for_each = local.builder_roles

  project = var.project_id
  role    = each.value
  member  = google_service_account.builder.member
}

resource "google_storage_bucket_iam_member" "builder" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.builder.member
}
