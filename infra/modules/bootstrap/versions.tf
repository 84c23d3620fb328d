terraform {
  # Terraform >= 1.5 and OpenTofu >= 1.6 both satisfy this.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.0, < 8.0"
    }
  }
}
