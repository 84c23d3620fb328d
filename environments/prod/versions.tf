terraform {
  # Terraform >= 1.5 and OpenTofu >= 1.6 both satisfy this.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Exactly the provider whose schema the offline checks serve
      # (tests/testdata/google-provider-7.45.0-schema.json.gz); reusable
      # modules keep a range. Commit .terraform.lock.hcl with it.
      version = "7.45.0"
    }
  }

  # The bucket is passed at init: terraform init -backend-config="bucket=<state bucket>"
  backend "gcs" {
    prefix = "environments/prod"
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
