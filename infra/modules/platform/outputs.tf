output "functions" {
  description = "Event functions (kind cloudevent): uri, runtime service account and subscriptions by name."
  value = {
    for name, f in module.functions : name => {
      uri             = f.uri
      service_account = f.service_account_email
      subscriptions   = f.subscriptions
    } if f.kind == "cloudevent"
  }
}

output "http_services" {
  description = "HTTP services (kind http): uri, once the invokers are granted, and runtime service account by name."
  value = {
    for name, s in module.http_services : name => {
      uri             = s.uri
      service_account = module.functions[name].service_account_email
      urls            = s.urls
      ip_address      = s.ip_address
    }
  }
}

output "topics" {
  description = "Topic ids by name (domain and dead-letter topics)."
  value       = { for name, t in module.topics : name => t.id }
}

output "source_bucket" {
  description = "Bucket the pipeline uploads function archives to."
  value       = module.project.source_bucket
}

output "database_connection_name" {
  description = "Cloud SQL connection name."
  value       = module.postgres.connection_name
}

output "analytics_dataset" {
  description = "BigQuery dataset id."
  value       = module.analytics.dataset_id
}

output "migrations" {
  description = "The migration job the pipeline runs before deploying functions: job, location, service_account and database_user of the migrator."
  value       = module.postgres.migrations
}
