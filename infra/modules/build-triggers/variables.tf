variable "project_id" {
  description = "Project that runs the builds (the environment's project)."
  type        = string
  nullable    = false
}

variable "location" {
  description = "Cloud Build location of the triggers (\"global\" or a region)."
  type        = string
  default     = "global"
  nullable    = false
}

variable "env" {
  description = "Environment the triggers deploy (the _ENV substitution)."
  type        = string
  nullable    = false

  validation {
    condition     = contains(["dev", "staging", "prod"], var.env)
    error_message = "The env must be dev, staging or prod."
  }
}

variable "github" {
  description = "GitHub repository (through the Cloud Build GitHub app) and the branch regex whose pushes deploy this environment."
  type = object({
    owner  = string
    name   = string
    branch = optional(string, "^main$")
  })
  nullable = false
}

variable "functions" {
  description = "Functions by name (the manifests module's functions output): one trigger per function folder, tagged with its team."
  type = map(object({
    team = string
  }))
  nullable = false
}

variable "require_approval" {
  description = "Hold every build for a manual approval in Cloud Build before it runs (true for prod)."
  type        = bool
  default     = false
  nullable    = false
}

variable "service_account" {
  description = "Service account id (projects/<p>/serviceAccounts/<email>) the builds run as; it needs rights to apply the environment."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^projects/[^/]+/serviceAccounts/[^/]+$", var.service_account))
    error_message = "The service_account must be an id like projects/<p>/serviceAccounts/<email>."
  }
}

variable "state_bucket" {
  description = "GCS bucket holding the Terraform state (the _TF_STATE_BUCKET substitution, passed to terraform init -backend-config)."
  type        = string
  nullable    = false
}

variable "source_bucket" {
  description = "Bucket the pipeline uploads function archives to (the _SOURCE_BUCKET substitution)."
  type        = string
  nullable    = false
}

variable "filename" {
  description = "Path of the build config in the repository."
  type        = string
  default     = "cloudbuild.yaml"
  nullable    = false
}
