locals {
  labels = merge(var.labels, { env = var.env })
  day_ms = 24 * 60 * 60 * 1000
}

resource "google_bigquery_dataset" "default" {
  project                    = var.project_id
  dataset_id                 = var.dataset_id
  location                   = var.location
  friendly_name              = "Domain events and dead letters"
  labels                     = local.labels
  delete_contents_on_destroy = false
}

# One row per domain event, written by the analytics function.
resource "google_bigquery_table" "events" {
  project             = var.project_id
  dataset_id          = google_bigquery_dataset.default.dataset_id
  table_id            = "events"
  labels              = local.labels
  schema              = var.schemas.events
  clustering          = ["event_type"]
  deletion_protection = var.tables.deletion_protection

  time_partitioning {
    type          = "DAY"
    field         = "event_time"
    expiration_ms = var.tables.events_partition_expiration_days == null ? null : var.tables.events_partition_expiration_days * local.day_ms
  }
}

# One row per dead-lettered message, written by the dead-letter archive.
resource "google_bigquery_table" "dead_letters" {
  project             = var.project_id
  dataset_id          = google_bigquery_dataset.default.dataset_id
  table_id            = "dead_letters"
  labels              = local.labels
  schema              = var.schemas.dead_letters
  clustering          = ["subscription", "reason_class"]
  deletion_protection = var.tables.deletion_protection

  time_partitioning {
    type          = "DAY"
    field         = "dead_lettered_at"
    expiration_ms = var.tables.dead_letters_partition_expiration_days == null ? null : var.tables.dead_letters_partition_expiration_days * local.day_ms
  }
}
