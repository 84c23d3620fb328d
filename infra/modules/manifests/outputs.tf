output "functions" {
  description = "Every manifest by function name, optional keys defaulted (kind, team, codeowners, resources with timeout_seconds, env, secret_env, publishes, database, bigquery), with dead_letter_topic (\"<name>.dlq\", null for kind http) and subscriptions (as in event_functions, {} for kind http): the inputs of one event-function call per manifest."
  value       = local.deployments
}

output "event_functions" {
  description = "Manifests of kind cloudevent by name, each with dead_letter_topic (\"<name>.dlq\") and subscriptions: topic => {topic, ordering, filter, max_delivery_attempts, min_backoff, max_backoff, ack_deadline_seconds, dead_letters}. A consumes_dead_letters function gets one entry per other function's dead-letter topic."
  value       = local.event_functions
}

output "http_services" {
  description = "Manifests of kind http (Cloud Run HTTP services) by name, shaped like functions."
  value       = local.http_services
}

output "topics" {
  description = "Every topic to create by id: the catalogue's domain topics and one dead-letter topic per cloudevent function; each with name, description, team, retention, dead_letter, function (the consumer owning a dead-letter topic), labels (team, kind and function) and retained_subscription ({} for dead-letter topics nothing consumes, else null)."
  value       = local.topics
}

output "dead_letter_topics" {
  description = "Dead-letter topic id by consumer function name (\"<name>.dlq\")."
  value       = local.dead_letter_topics
}

output "unconsumed_dead_letter_topics" {
  description = "Dead-letter topics that no function consumes (the archive's own); they need a retained subscription and an alert."
  value       = local.unconsumed_dead_letter_topics
}

output "teams" {
  description = "Function names by owning team."
  value       = local.teams
}

output "bigquery_schemas" {
  description = "BigQuery JSON schemas that the analytics and dead-letter functions embed: events and dead_letters (input schemas of the analytics module)."
  value = {
    events       = file("${var.repo_root}/functions/analytics/schema/events.json")
    dead_letters = file("${var.repo_root}/functions/deadletter/schema/dead_letters.json")
  }
}

output "secrets" {
  description = "Secret Manager secret ids that any manifest exposes through secret_env (containers the project-services module creates)."
  value       = sort(distinct(flatten([for f in local.functions : [for k, v in f.secret_env : v.secret]])))
}
