output "id" {
  description = "Topic id (projects/<project>/topics/<name>), available once its publishers are granted."
  value       = google_pubsub_topic.default.id
  depends_on  = [google_pubsub_topic_iam_member.publishers]
}

output "name" {
  description = "Topic name."
  value       = google_pubsub_topic.default.name
  depends_on  = [google_pubsub_topic_iam_member.publishers]
}

output "retained_subscription" {
  description = "Name of the retained pull subscription, or null when none was asked for."
  value       = one(google_pubsub_subscription.retained[*].name)
}

output "labels" {
  description = "Labels of the topic (team, env and any others): monitoring routes alerts by team."
  value       = local.labels
}
