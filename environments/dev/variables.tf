# The provider block needs project_id, region and env; the pipeline writes
# function_sources (sources.auto.tfvars.json). The other settings are passed to the platform module
# as they are: their types, defaults and validation are its variables
# (infra/modules/platform/README.md), and null keeps its default.

variable "project_id" {
  description = "Project of this environment."
  type        = string
  nullable    = false
}

variable "region" {
  description = "Region of the provider and the platform."
  type        = string
  nullable    = false
}

variable "env" {
  description = "Environment name (dev, staging, prod)."
  type        = string
  nullable    = false
}

variable "function_sources" {
  description = "Source archive object by function name, written by the pipeline (sources.auto.tfvars.json)."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "source_bucket" {
  description = "The platform module's source_bucket input (the bootstrap's source_bucket output)."
  type        = string
}

variable "image_retention" {
  description = "The platform module's image_retention input."
  type        = any
  default     = null
}

variable "network" {
  description = "The platform module's network input."
  type        = any
  default     = null
}

variable "database" {
  description = "The platform module's database input."
  type        = any
  default     = null
}

variable "analytics" {
  description = "The platform module's analytics input."
  type        = any
  default     = null
}

variable "min_instances" {
  description = "The platform module's min_instances input."
  type        = number
  default     = null
}

variable "orders_api" {
  description = "The platform module's orders_api input."
  type        = any
  default     = null
}

variable "alerting" {
  description = "The platform module's alerting input."
  type        = any
  default     = null
}
