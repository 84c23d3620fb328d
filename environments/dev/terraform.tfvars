# Example values for the dev environment. The pipeline adds
# function_sources from the archives it uploaded (-var-file=sources.auto.tfvars.json).
project_id = "example-dev"
region     = "europe-west1"
env        = "dev"

# Created by the bootstrap root (infra/bootstrap) before the first pipeline run.
source_bucket = "example-dev-function-sources"

database = {
  tier                = "db-custom-1-3840"
  disk_size_gb        = 10
  availability_type   = "ZONAL"
  deletion_protection = false
  # Cloud SQL needs more retained backups than days of transaction logs.
  retained_backups               = 3
  transaction_log_retention_days = 2
}

analytics = {
  location                  = "EU"
  partition_expiration_days = 30
  deletion_protection       = false
}

min_instances = 0

# No load balancer in dev: the orders API takes IAM-authenticated calls on
# its run.app URL directly (ingress ALLOW_ALL, run.invoker required).
orders_api = {
  invokers = { developers = "group:developers@example.com" }
}

alerting = {
  notification_channels = {
    platform = ["projects/example-dev/notificationChannels/1000000000000000001"]
  }
  default_notification_channels = ["projects/example-dev/notificationChannels/1000000000000000001"]
  thresholds = {
    oldest_unacked_age_seconds = 1800
    error_ratio                = 0.2
    duration_seconds           = 600
  }
}

