# The whole system in one project: every module call and the wiring between
# them. Environments call this module once with their values; every
# functions/*/function.yaml becomes a function through module.manifests, so
# adding a function folder deploys it with no Terraform edit.

locals {
  # The repository this module lives in: topics.yaml, functions/*/function.yaml
  # and the BigQuery schemas the functions embed.
  repo_root = "${path.module}/../../.."

  shared_labels = { team = var.platform_team }
}

module "manifests" {
  source    = "../manifests"
  repo_root = local.repo_root
}

module "project" {
  source     = "../project-services"
  project_id = var.project_id
  region     = var.region
  env        = var.env
  labels     = local.shared_labels
  secrets    = module.manifests.secrets
}

module "network" {
  source                 = "../network"
  project_id             = var.project_id
  region                 = var.region
  env                    = var.env
  labels                 = local.shared_labels
  subnet_cidr            = var.network.subnet_cidr
  private_services_range = var.network.private_services_range

  depends_on = [module.project]
}

module "topics" {
  source   = "../topic"
  for_each = module.manifests.topics

  project_id                 = var.project_id
  name                       = each.key
  env                        = var.env
  labels                     = each.value.labels
  message_retention_duration = each.value.retention
  retained_subscription      = each.value.retained_subscription

  depends_on = [module.project]
}

module "postgres" {
  source          = "../postgres"
  project_id      = var.project_id
  region          = var.region
  name            = "platform-${var.env}"
  env             = var.env
  labels          = local.shared_labels
  private_network = module.network.id
  instance = {
    tier                = var.database.tier
    disk_size_gb        = var.database.disk_size_gb
    availability_type   = var.database.availability_type
    deletion_protection = var.database.deletion_protection
  }
  backup = {
    retained_backups = var.database.retained_backups
  }
}

module "analytics" {
  source     = "../analytics"
  project_id = var.project_id
  location   = var.analytics.location
  env        = var.env
  labels     = { team = var.analytics.team }
  schemas    = module.manifests.bigquery_schemas
  tables = {
    events_partition_expiration_days       = var.analytics.partition_expiration_days
    dead_letters_partition_expiration_days = var.analytics.partition_expiration_days
    deletion_protection                    = var.analytics.deletion_protection
  }

  depends_on = [module.project]
}

# One function per manifest, of either kind: a cloudevent function with its
# push subscriptions and dead-letter topic, or an http one (the orders API)
# whose callers module.http_services adds.
module "functions" {
  source   = "../event-function"
  for_each = module.manifests.functions

  project_id           = var.project_id
  region               = var.region
  name                 = each.key
  kind                 = each.value.kind
  ingress              = each.value.kind == "http" ? var.orders_api.ingress : "ALLOW_INTERNAL_ONLY"
  env                  = var.env
  team                 = each.value.team
  entry_point          = each.value.entry_point
  resources            = each.value.resources
  min_instances        = var.min_instances
  environment          = each.value.env
  secret_environment   = each.value.secret_env
  publishes            = each.value.publishes
  subscriptions        = each.value.subscriptions
  dead_letter_topic    = each.value.dead_letter_topic
  topics               = module.topics
  pubsub_service_agent = module.project.pubsub_service_agent
  build                = module.project.build
  network              = module.network.egress
  source_archive = {
    bucket = module.project.source_bucket
    object = lookup(var.function_sources, each.key, "${each.key}.zip")
  }
  cloudsql = {
    enabled                  = each.value.database
    instance_name            = module.postgres.cloudsql.instance_name
    instance_connection_name = module.postgres.cloudsql.instance_connection_name
    database                 = module.postgres.cloudsql.database
    database_roles           = var.database.database_roles
  }
  bigquery = {
    enabled    = each.value.bigquery
    dataset_id = module.analytics.dataset_id
  }
}

# Who may call each HTTP service: the invokers and the outbox relay job.
module "http_services" {
  source   = "../http-service"
  for_each = module.manifests.http_services

  project_id = var.project_id
  region     = var.region
  name       = each.key
  service    = module.functions[each.key]
  invokers   = var.orders_api.invokers
  scheduled_jobs = {
    outbox-relay = {
      path     = var.orders_api.outbox_relay_path
      schedule = var.orders_api.outbox_relay_cron
    }
  }
}

module "monitoring" {
  source                        = "../monitoring"
  project_id                    = var.project_id
  env                           = var.env
  notification_channels         = var.alerting.notification_channels
  default_notification_channels = var.alerting.default_notification_channels
  thresholds                    = var.alerting.thresholds
  functions                     = module.functions
  topics                        = module.topics
  database = {
    instance_name = module.postgres.name
    team          = var.platform_team
  }
}

module "build_triggers" {
  source           = "../build-triggers"
  project_id       = var.project_id
  env              = var.env
  functions        = module.manifests.functions
  require_approval = var.build.require_approval
  service_account  = var.build.service_account
  state_bucket     = var.build.state_bucket
  source_bucket    = module.project.source_bucket
  github = {
    owner  = var.build.github_owner
    name   = var.build.github_name
    branch = var.build.branch
  }
}
