terraform {
  # Terraform >= 1.5 and OpenTofu >= 1.6 both satisfy this.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Exactly the provider whose schema the offline checks serve; commit
      # .terraform.lock.hcl with it.
      version = "7.45.0"
    }
  }

  # No backend block: the state bucket does not exist before the first
  # apply. Afterwards, move this state into it (docs/infrastructure.md,
  # "Bootstrap"): copy backend.tf.example to backend.tf and run
  # terraform init -migrate-state -backend-config="bucket=<state bucket>".
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    env        = var.env
    managed-by = "terraform"
  }
}
