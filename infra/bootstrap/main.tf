# Bootstrap of one environment's project: what the pipeline needs before its
# first run (docs/infrastructure.md, "Bootstrap"). Run once per project by
# someone with owner rights, with that environment's tfvars:
#
#   terraform init && terraform apply -var-file=dev.tfvars
#
# The secret containers come from the manifests' secret_env, so a function
# that needs a new secret shows up here as a new container to bootstrap.

module "manifests" {
  source    = "../modules/manifests"
  repo_root = "${path.module}/../.."
}

module "bootstrap" {
  source = "../modules/bootstrap"

  project_id          = var.project_id
  region              = var.region
  env                 = var.env
  labels              = { team = var.platform_team }
  secrets             = module.manifests.secrets
  github              = var.github
  ref                 = var.ref
  previous_promotions = var.previous_promotions
  promotion_readers   = var.promotion_readers
  require_approval    = var.require_approval
}
