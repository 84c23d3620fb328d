resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = var.publishers

  project = var.project_id
  topic   = google_pubsub_topic.default.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}
