variable "project_id" {
  description = "Project of the environment."
  type        = string
  nullable    = false
}

variable "region" {
  description = "Region of the buckets and the pipeline image repository."
  type        = string
  nullable    = false
}

variable "env" {
  description = "Environment name (dev, staging, prod)."
  type        = string
  nullable    = false

  validation {
    condition     = contains(["dev", "staging", "prod"], var.env)
    error_message = "The env must be dev, staging or prod."
  }
}

variable "labels" {
  description = "Labels of the buckets, topic, repository and secrets. Must include team; env is set by the module."
  type        = map(string)
  nullable    = false

  validation {
    condition     = contains(keys(var.labels), "team")
    error_message = "The labels must include \"team\"."
  }
}

variable "state_bucket" {
  description = "Name of the Terraform state bucket; null means \"<project_id>-tfstate\"."
  type        = string
  default     = null
}

variable "source_bucket" {
  description = "Bucket of function archives: name (null means \"<project_id>-function-sources\"), days before an archive is deleted (archive_age_days) and before a promotion record is (promotion_age_days)."
  type = object({
    name               = optional(string)
    archive_age_days   = optional(number, 90)
    promotion_age_days = optional(number, 365)
    force_destroy      = optional(bool, false)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.source_bucket.archive_age_days >= 7 && var.source_bucket.promotion_age_days >= 7
    error_message = "The source_bucket.archive_age_days and promotion_age_days must be at least 7."
  }
}

variable "plan_retention_days" {
  description = "Days a saved plan (plans/ in the state bucket) is kept."
  type        = number
  default     = 30
  nullable    = false
}

variable "secrets" {
  description = "Secret Manager secret ids to create (the manifests module's secrets output). Values are added as versions by hand: the one manual step."
  type        = set(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for s in var.secrets : can(regex("^[A-Za-z0-9_-]{1,255}$", s))])
    error_message = "Each secret id must be 1-255 letters, digits, dashes or underscores."
  }
}

variable "github" {
  description = "GitHub repository (connected to Cloud Build through the GitHub app)."
  type = object({
    owner = string
    name  = string
  })
  nullable = false
}

variable "ref" {
  description = "What starts this environment's ci build: branch (dev: \"^main$\") or tag (staging: release tags, prod: prod- tags). The build-triggers module's ref."
  type = object({
    branch = optional(string)
    tag    = optional(string)
  })
  nullable = false
}

variable "default_branch" {
  description = "Branch of the repository whose pipeline files the deploy and apply builds run."
  type        = string
  default     = "main"
  nullable    = false
}

variable "previous_promotions" {
  description = "Source bucket of the previous environment, whose promotions/<commit> record the ci build requires; null for dev."
  type        = string
  default     = null
}

variable "promotion_readers" {
  description = "IAM members (the next environment's ci account) that may read this environment's promotion records, by key."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "require_approval" {
  description = "Plan, then hold for approval, then apply exactly that plan (prod)."
  type        = bool
  default     = false
  nullable    = false
}
