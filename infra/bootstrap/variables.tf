# Values differ per environment only: dev.tfvars, staging.tfvars, prod.tfvars.
# Types, defaults and validation are the bootstrap module's.

variable "project_id" {
  description = "Project of the environment."
  type        = string
}

variable "region" {
  description = "Region of the buckets."
  type        = string
}

variable "env" {
  description = "Environment name (dev, staging, prod)."
  type        = string
}

variable "platform_team" {
  description = "Team label of the bootstrap resources."
  type        = string
  default     = "platform"
}

variable "github" {
  description = "The bootstrap module's github input."
  type        = any
}

variable "ref" {
  description = "The bootstrap module's ref input."
  type        = any
}

variable "previous_promotions" {
  description = "The bootstrap module's previous_promotions input."
  type        = string
  default     = null
}

variable "promotion_readers" {
  description = "The bootstrap module's promotion_readers input."
  type        = map(string)
  default     = {}
}

variable "require_approval" {
  description = "The bootstrap module's require_approval input."
  type        = bool
  default     = false
}
