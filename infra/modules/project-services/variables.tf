variable "project_id" {
  description = "Project to prepare."
  type        = string
  nullable    = false
}

variable "region" {
  description = "Region of the source bucket and the Artifact Registry repository."
  type        = string
  nullable    = false
}

variable "env" {
  description = "Environment name, set as the env label."
  type        = string
  nullable    = false
}

variable "labels" {
  description = "Labels of the bucket, repository and secrets. Must include team; env is set by the module."
  type        = map(string)
  nullable    = false

  validation {
    condition     = contains(keys(var.labels), "team")
    error_message = "The labels must include \"team\"."
  }
}

variable "services" {
  description = "APIs to enable. The default is everything the platform uses."
  type        = set(string)
  default = [
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "eventarc.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "cloudtrace.googleapis.com",
  ]
  nullable = false

  validation {
    condition     = alltrue([for s in var.services : endswith(s, ".googleapis.com")])
    error_message = "Each service must be an API name ending in .googleapis.com."
  }
}

variable "source_bucket" {
  description = "Name of the bucket of function source archives (created by the bootstrap module before the first pipeline run); the function builder may read it, and nothing else in Cloud Storage."
  type        = string
  nullable    = false
}

variable "image_retention" {
  description = "Artifact Registry cleanup: keep the keep_count newest versions of each image (the running one among them) and delete versions older than delete_after_days."
  type = object({
    keep_count        = optional(number, 10)
    delete_after_days = optional(number, 30)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.image_retention.keep_count >= 1 && var.image_retention.delete_after_days >= 1
    error_message = "The image_retention.keep_count and delete_after_days must be at least 1."
  }
}

variable "artifact_repository_id" {
  description = "Id of the Docker repository that holds the functions' built images."
  type        = string
  default     = "functions"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.artifact_repository_id))
    error_message = "The artifact_repository_id must be lowercase letters, digits or dashes, starting with a letter."
  }
}
