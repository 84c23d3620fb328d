# Example values for the dev environment. The pipeline adds
# function_sources from the archives it uploaded (-var-file=sources.auto.tfvars.json).
project_id = "example-dev"
region     = "europe-west1"
env        = "dev"

database = {
  tier                = "db-custom-1-3840"
  disk_size_gb        = 10
  availability_type   = "ZONAL"
  deletion_protection = false
  retained_backups    = 3
}

analytics = {
  location                  = "EU"
  partition_expiration_days = 30
  deletion_protection       = false
}

min_instances = 0

orders_api = {
  ingress           = "ALLOW_INTERNAL_ONLY"
  invokers          = { developers = "group:developers@example.com" }
  outbox_relay_cron = "*/5 * * * *"
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

build = {
  github_owner    = "example-org"
  github_name     = "platform"
  branch          = "^main$"
  service_account = "projects/example-dev/serviceAccounts/deployer@example-dev.iam.gserviceaccount.com"
  state_bucket    = "example-dev-tfstate"
}
