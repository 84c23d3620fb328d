resource "google_bigquery_dataset_iam_member" "writers" {
  for_each = var.writers

  project    = var.project_id
  dataset_id = google_bigquery_dataset.default.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = each.value
}
