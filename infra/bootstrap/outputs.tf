output "state_bucket" {
  description = "terraform init -backend-config=bucket=<this> in environments/<env>."
  value       = module.bootstrap.state_bucket
}

output "source_bucket" {
  description = "The environment's source_bucket (terraform.tfvars)."
  value       = module.bootstrap.source_bucket
}

output "secrets" {
  description = "Secret containers that need a version before the first deploy."
  value       = module.bootstrap.secrets
}

output "ci_service_account" {
  description = "Email of the ci account: the next environment's promotion_readers entry."
  value       = module.bootstrap.ci_service_account
}

output "deployer_service_account" {
  description = "Email of the deployer account."
  value       = module.bootstrap.deployer_service_account
}

output "triggers" {
  description = "Build trigger names by role."
  value       = module.bootstrap.triggers
}
