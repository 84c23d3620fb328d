# The whole system in one project: every module call and the wiring between
# them. Environments call this module once with their values; every
# functions/*/function.yaml becomes a function through module.manifests, so
# adding a function folder deploys it with no Terraform edit.

locals {
  # The repository this module lives in: topics.yaml, functions/*/function.yaml
  # and the BigQuery schemas the functions embed.
  repo_root = "${path.module}/../../.."

  shared_labels = { team = var.platform_team }

  # Connections each database client may hold: max instances x pool size
  # (DB_MAX_CONNS: the manifest's env wins over the environment's pool_size).
  pool_size  = { for name, f in module.manifests.functions : name => tonumber(lookup(f.env, "DB_MAX_CONNS", var.database.pool_size)) if f.database }
  db_clients = { for name, pool in local.pool_size : name => module.manifests.functions[name].resources.max_instances * pool }

  # HTTP services are reachable: through the load balancer, or directly
  # with IAM authentication when there is none (dev).
  http_ingress = var.orders_api.load_balancer == null ? "ALLOW_ALL" : "ALLOW_INTERNAL_AND_GCLB"
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

  source_bucket   = var.source_bucket
  image_retention = var.image_retention
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
    max_connections     = var.database.max_connections
  }
  backup = {
    retained_backups               = var.database.retained_backups
    transaction_log_retention_days = var.database.transaction_log_retention_days
  }
  clients = local.db_clients
  migrations = {
    image          = var.database.migrator_image
    network        = module.network.egress.network
    subnetwork     = module.network.egress.subnetwork
    function_users = { for name in keys(local.pool_size) : name => module.functions[name].database_user }
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

# One function per manifest: with a push trigger (kind cloudevent: push
# subscriptions and a dead-letter topic) or without one (kind http, the
# orders API, whose callers and load balancer module.http_services adds).
# Optional features are null when the manifest does not use them.
module "functions" {
  source   = "../event-function"
  for_each = module.manifests.functions

  project_id = var.project_id
  region     = var.region
  name       = each.key
  # An internal HTTP service (the relay) is called by Cloud Scheduler, whose
  # requests arrive from outside: IAM (run.invoker of its job only) guards it.
  ingress            = each.value.kind != "http" ? "ALLOW_INTERNAL_ONLY" : each.value.internal ? "ALLOW_ALL" : local.http_ingress
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
  source_archive = {
    bucket = module.project.source_bucket
    object = lookup(var.function_sources, each.key, "${each.key}.zip")
  }
  trigger = each.value.kind == "cloudevent" ? {
    dead_letter_topic    = each.value.dead_letter_topic
    pubsub_service_agent = module.project.pubsub_service_agent
    subscriptions        = each.value.subscriptions
  } : null
  cloudsql = each.value.database ? {
    instance_name            = module.postgres.cloudsql.instance_name
    instance_connection_name = module.postgres.cloudsql.instance_connection_name
    database                 = module.postgres.cloudsql.database
    database_roles           = var.database.function_roles
    pool_size                = local.pool_size[each.key]
  } : null
  bigquery = each.value.bigquery ? {
    dataset_id = module.analytics.dataset_id
  } : null
}

# Who may call each HTTP service: the invokers (none for an internal
# service) and the manifest's schedules (the outbox relay's).
module "http_services" {
  source   = "../http-service"
  for_each = module.manifests.http_services

  project_id = var.project_id
  region     = var.region
  name       = each.key
  service    = module.functions[each.key]
  invokers   = each.value.internal ? {} : var.orders_api.invokers
  labels     = { team = each.value.team, env = var.env }
  load_balancer = each.value.internal || var.orders_api.load_balancer == null ? null : {
    domains               = lookup(var.orders_api.load_balancer.domains, each.key, [])
    rate_limit            = var.orders_api.load_balancer.rate_limit
    allowed_source_ranges = var.orders_api.load_balancer.allowed_source_ranges
  }
  scheduled_jobs = each.value.schedules
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
