# Module calls only: every function folder's manifest becomes a deployment
# through module.manifests; environments differ only in terraform.tfvars.

module "manifests" {
  source    = "../../modules/manifests"
  repo_root = "${path.root}/${var.repo_root}"
}

module "project" {
  source     = "../../modules/project-services"
  project_id = var.project_id
  region     = var.region
  env        = var.env
  labels     = { team = var.platform_team }
  secrets    = module.manifests.secrets
}

module "network" {
  source      = "../../modules/network"
  project_id  = var.project_id
  region      = var.region
  env         = var.env
  labels      = { team = var.platform_team }
  subnet_cidr = var.network.subnet_cidr
  private_services_range = {
    address       = var.network.private_services_start
    prefix_length = var.network.private_services_bits
  }

  depends_on = [module.project]
}

module "topics" {
  source   = "../../modules/topic"
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
  source          = "../../modules/postgres"
  project_id      = var.project_id
  region          = var.region
  name            = "platform-${var.env}"
  env             = var.env
  labels          = { team = var.platform_team }
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
  source     = "../../modules/analytics"
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

module "event_functions" {
  source   = "../../modules/event-function"
  for_each = module.manifests.event_functions

  project_id           = var.project_id
  region               = var.region
  name                 = each.key
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

module "http_services" {
  source   = "../../modules/http-service"
  for_each = module.manifests.http_services

  project_id         = var.project_id
  region             = var.region
  name               = each.key
  env                = var.env
  team               = each.value.team
  entry_point        = each.value.entry_point
  resources          = each.value.resources
  min_instances      = var.min_instances
  environment        = each.value.env
  secret_environment = each.value.secret_env
  publishes          = each.value.publishes
  topics             = module.topics
  build              = module.project.build
  network            = module.network.egress
  ingress            = var.orders_api.ingress
  invokers           = var.orders_api.invokers
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
  scheduled_jobs = {
    outbox-relay = {
      path     = var.orders_api.outbox_relay_path
      schedule = var.orders_api.outbox_relay_cron
    }
  }
}

module "monitoring" {
  source                        = "../../modules/monitoring"
  project_id                    = var.project_id
  env                           = var.env
  notification_channels         = var.notification_channels
  default_notification_channels = var.default_notification_channels
  functions                     = module.event_functions
  services                      = module.http_services
  topics                        = module.topics
  thresholds                    = var.alert_thresholds
  database = {
    instance_name = module.postgres.name
    team          = var.platform_team
  }
}

module "build_triggers" {
  source           = "../../modules/build-triggers"
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
