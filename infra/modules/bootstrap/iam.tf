resource "google_project_iam_member" "ci" {
  for_each = local.ci_project_roles

  project = var.project_id
  role    = each.value
  member  = google_service_account.ci.member
}

resource "google_project_iam_member" "deployer" {
  for_each = local.deployer_project_roles

  project = var.project_id
  role    = each.value
  member  = google_service_account.deployer.member
}

# The ci account uploads archives (no overwrite: objectCreator cannot
# replace an object) and checks which exist.
resource "google_storage_bucket_iam_member" "ci_sources" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])

  bucket = google_storage_bucket.sources.name
  role   = each.value
  member = google_service_account.ci.member
}

# The ci account pushes the images it builds to the pipeline repository.
resource "google_artifact_registry_repository_iam_member" "ci" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.pipeline.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.ci.member
}

# State and saved plans: the deployer only.
resource "google_storage_bucket_iam_member" "deployer_state" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.deployer.member
}

# The deployer grants the function builder read access on the archives
# (bucket IAM) and writes promotion records.
resource "google_storage_bucket_iam_member" "deployer_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.admin"
  member = google_service_account.deployer.member
}

# The next environment's ci account reads this environment's promotion
# records, and nothing else of the bucket.
resource "google_storage_bucket_iam_member" "promotion_readers" {
  for_each = var.promotion_readers

  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = each.value

  condition {
    title      = "promotion-records-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.sources.name}/objects/promotions/\")"
  }
}
