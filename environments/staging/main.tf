# The whole platform with this environment's values (terraform.tfvars and
# the pipeline's sources.auto.tfvars.json). Environments differ only in
# those values; types, defaults and validation live in the platform module.
module "platform" {
  source = "../../infra/modules/platform"

  project_id       = var.project_id
  region           = var.region
  env              = var.env
  function_sources = var.function_sources
  source_bucket    = var.source_bucket
  image_retention  = var.image_retention
  network          = var.network
  database         = var.database
  analytics        = var.analytics
  min_instances    = var.min_instances
  orders_api       = var.orders_api
  alerting         = var.alerting
}
