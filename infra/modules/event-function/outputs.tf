output "id" {
  description = "Function id (projects/<p>/locations/<r>/functions/<name>)."
  value       = google_cloudfunctions2_function.default.id
  depends_on  = [google_cloud_run_v2_service_iam_member.push_invoker]
}

output "name" {
  description = "Function name."
  value       = google_cloudfunctions2_function.default.name
}

output "kind" {
  description = "cloudevent for a function with a trigger, http without (the manifest kind)."
  value       = local.event ? "cloudevent" : "http"
}

output "team" {
  description = "Owning team (for alert routing)."
  value       = var.team
}

output "uri" {
  description = "URL of the function's Cloud Run service (internal ingress only for a cloudevent function)."
  value       = google_cloudfunctions2_function.default.service_config[0].uri
  depends_on  = [google_cloud_run_v2_service_iam_member.push_invoker]
}

output "service_name" {
  description = "Short name of the underlying Cloud Run service: the service_name label of its metrics and what alerts filter on. The provider reports the full resource name (projects/<p>/locations/<r>/services/<name>); this is its last segment."
  value       = element(split("/", google_cloudfunctions2_function.default.service_config[0].service), length(split("/", google_cloudfunctions2_function.default.service_config[0].service)) - 1)
}

output "service_account_email" {
  description = "Email of the runtime service account."
  value       = google_service_account.default.email
  depends_on  = [google_project_iam_member.runtime, google_pubsub_topic_iam_member.publishes]
}

output "service_account_member" {
  description = "IAM member string of the runtime service account."
  value       = local.runtime_member
}

output "push_service_account_email" {
  description = "Email of the push (OIDC) service account, or null for an http function."
  value       = one(google_service_account.push[*].email)
  depends_on  = [google_cloud_run_v2_service_iam_member.push_invoker]
}

output "dead_letter_topic" {
  description = "Name of the function's dead-letter topic, or null for an http function."
  value       = local.event ? var.topics[local.dead_letter_topic].name : null
  depends_on  = [google_pubsub_topic_iam_member.dead_letter_service_agent]
}

output "subscriptions" {
  description = "Subscription name by consumed topic name, usable once the service agent holds subscriber on it."
  value       = { for t, s in google_pubsub_subscription.default : t => s.name }
  depends_on  = [google_pubsub_subscription_iam_member.service_agent]
}

output "subscription_ids" {
  description = "Subscription id by consumed topic name."
  value       = { for t, s in google_pubsub_subscription.default : t => s.id }
  depends_on  = [google_pubsub_subscription_iam_member.service_agent]
}

output "database_user" {
  description = "PostgreSQL user name of the runtime service account, or null without database access."
  value       = one(google_sql_user.default[*].name)
}

output "database_connections" {
  description = "Most connections the function can hold open: max_instances x cloudsql.pool_size (0 without database access). The postgres module checks the sum against max_connections."
  value       = var.cloudsql == null ? 0 : var.resources.max_instances * var.cloudsql.pool_size
}

output "ingress" {
  description = "Ingress setting of the function (the http-service module checks it against its load balancer)."
  value       = var.ingress
}
