# Example values for the prod environment: HA database, deletion protection,
# warm instances, tight alerts, and every build waits for approval.
project_id = "example-prod"
region     = "europe-west1"
env        = "prod"

database = {
  tier                = "db-custom-4-15360"
  disk_size_gb        = 100
  availability_type   = "REGIONAL"
  deletion_protection = true
  retained_backups    = 30
}

analytics = {
  location                  = "EU"
  partition_expiration_days = null
  deletion_protection       = true
}

min_instances = 1

orders_api = {
  ingress           = "ALLOW_INTERNAL_ONLY"
  invokers          = { storefront = "serviceAccount:storefront@example-prod.iam.gserviceaccount.com" }
  outbox_relay_cron = "* * * * *"
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

build = {
  github_owner     = "example-org"
  github_name      = "platform"
  branch           = "^main$"
  service_account  = "projects/example-prod/serviceAccounts/deployer@example-prod.iam.gserviceaccount.com"
  state_bucket     = "example-prod-tfstate"
  require_approval = true
}
