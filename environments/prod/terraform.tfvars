# Example values for the prod environment: HA database, deletion protection,
# warm instances, tight alerts; applies wait for approval of the saved plan.
project_id = "example-prod"
region     = "europe-west1"
env        = "prod"

# Created by the bootstrap root (infra/bootstrap) before the first pipeline run.
source_bucket = "example-prod-function-sources"

database = {
  tier                = "db-custom-4-15360"
  disk_size_gb        = 100
  availability_type   = "REGIONAL"
  deletion_protection = true
  retained_backups    = 30
  max_connections     = 500
  pool_size           = 5
}

analytics = {
  location                  = "EU"
  partition_expiration_days = null
  deletion_protection       = true
}

min_instances = 1

# The orders API is reached through an external HTTPS load balancer with
# Cloud Armor (ingress ALLOW_INTERNAL_AND_GCLB); callers still need
# run.invoker and an ID token for the service's run.app URL.
orders_api = {
  invokers = { storefront = "serviceAccount:storefront@example-prod.iam.gserviceaccount.com" }
  load_balancer = {
    domains    = { ordersapi = ["orders.example.com"] }
    rate_limit = { count = 1200, interval_sec = 60 }
  }
}

alerting = {
  notification_channels = {
    platform   = ["projects/example-prod/notificationChannels/3000000000000000001"]
    orders     = ["projects/example-prod/notificationChannels/3000000000000000002"]
    payments   = ["projects/example-prod/notificationChannels/3000000000000000003"]
    fulfilment = ["projects/example-prod/notificationChannels/3000000000000000004"]
    data       = ["projects/example-prod/notificationChannels/3000000000000000005"]
  }
  default_notification_channels = ["projects/example-prod/notificationChannels/3000000000000000001"]
  thresholds = {
    oldest_unacked_age_seconds = 300
    error_ratio                = 0.02
    duration_seconds           = 120
  }
}

