output "id" {
  description = "Dataset id (projects/<p>/datasets/<id>)."
  value       = google_bigquery_dataset.default.id
  depends_on  = [google_bigquery_dataset_iam_member.writers]
}

output "dataset_id" {
  description = "Dataset id (short), once its tables exist."
  value       = google_bigquery_dataset.default.dataset_id
  depends_on  = [google_bigquery_table.events, google_bigquery_table.dead_letters, google_bigquery_dataset_iam_member.writers]
}

output "tables" {
  description = "Table ids by name (events, dead_letters)."
  value = {
    events       = google_bigquery_table.events.table_id
    dead_letters = google_bigquery_table.dead_letters.table_id
  }
}
