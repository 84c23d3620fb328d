terraform {
  # Terraform >= 1.5 and OpenTofu >= 1.6 both satisfy this.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.0, < 8.0"
    }
  }

  # The bucket is passed at init: terraform init -backend-config="bucket=<state bucket>"
  backend "gcs" {
    prefix = "environments/dev"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    env        = var.env
    managed-by = "terraform"
  }
}
