output "functions" {
  description = "Event functions: uri, runtime service account and subscriptions by name."
  value       = module.platform.functions
}

output "http_services" {
  description = "HTTP services: uri and runtime service account by name."
  value       = module.platform.http_services
}

output "topics" {
  description = "Topic ids by name (domain and dead-letter topics)."
  value       = module.platform.topics
}

output "source_bucket" {
  description = "Bucket the pipeline uploads function archives to."
  value       = module.platform.source_bucket
}

output "database_connection_name" {
  description = "Cloud SQL connection name."
  value       = module.platform.database_connection_name
}

output "analytics_dataset" {
  description = "BigQuery dataset id."
  value       = module.platform.analytics_dataset
}

output "migrations" {
  description = "The migration job the pipeline runs before deploying functions."
  value       = module.platform.migrations
}
