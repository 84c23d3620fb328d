# Example values for the staging environment: production-like sizes without HA.
project_id = "example-staging"
region     = "europe-west1"
env        = "staging"

database = {
  tier                = "db-custom-2-7680"
  disk_size_gb        = 20
  availability_type   = "ZONAL"
  deletion_protection = true
  retained_backups    = 7
}

analytics = {
  location                  = "EU"
  partition_expiration_days = 90
  deletion_protection       = true
}

min_instances = 0

orders_api = {
  ingress           = "ALLOW_INTERNAL_ONLY"
  invokers          = { qa = "group:qa@example.com" }
  outbox_relay_cron = "* * * * *"
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

build = {
  github_owner    = "example-org"
  github_name     = "platform"
  branch          = "^main$"
  service_account = "projects/example-staging/serviceAccounts/deployer@example-staging.iam.gserviceaccount.com"
  state_bucket    = "example-staging-tfstate"
}
