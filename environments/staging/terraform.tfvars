# Example values for the staging environment: production-like sizes without HA.
project_id = "example-staging"
region     = "europe-west1"
env        = "staging"

# Created by the bootstrap root (infra/bootstrap) before the first pipeline run.
source_bucket = "example-staging-function-sources"

database = {
  tier                = "db-custom-2-7680"
  disk_size_gb        = 20
  availability_type   = "ZONAL"
  deletion_protection = true
  retained_backups    = 14
}

analytics = {
  location                  = "EU"
  partition_expiration_days = 90
  deletion_protection       = true
}

min_instances = 0

# The orders API is reached through an external HTTPS load balancer with
# Cloud Armor (ingress ALLOW_INTERNAL_AND_GCLB); callers still need
# run.invoker and an ID token for the service's run.app URL.
orders_api = {
  invokers = { qa = "group:qa@example.com" }
  load_balancer = {
    domains    = { ordersapi = ["orders.staging.example.com"] }
    rate_limit = { count = 600, interval_sec = 60 }
  }
}

alerting = {
  notification_channels = {
    platform   = ["projects/example-staging/notificationChannels/2000000000000000001"]
    orders     = ["projects/example-staging/notificationChannels/2000000000000000002"]
    payments   = ["projects/example-staging/notificationChannels/2000000000000000003"]
    fulfilment = ["projects/example-staging/notificationChannels/2000000000000000004"]
    data       = ["projects/example-staging/notificationChannels/2000000000000000005"]
  }
  default_notification_channels = ["projects/example-staging/notificationChannels/2000000000000000001"]
  thresholds = {
    oldest_unacked_age_seconds = 900
    error_ratio                = 0.1
    duration_seconds           = 300
  }
}

