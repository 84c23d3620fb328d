variable "project_id" {
  description = "Project that runs the builds (the environment's project)."
  type        = string
  nullable    = false
}

variable "region" {
  description = "Region of the environment (the _REGION substitution: the migration job and the pipeline image repository)."
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
  description = "GitHub repository, connected to Cloud Build through the GitHub app."
  type = object({
    owner = string
    name  = string
  })
  nullable = false
}

variable "ref" {
  description = "What starts the ci build: a branch regex (dev: \"^main$\", deploy on merge) or a tag regex (staging: \"^v[0-9]+\\\\.[0-9]+\\\\.[0-9]+$\", prod: \"^prod-v[0-9]+\\\\.[0-9]+\\\\.[0-9]+$\"; promotion by tagging a commit that passed the previous environment). Exactly one."
  type = object({
    branch = optional(string)
    tag    = optional(string)
  })
  nullable = false

  validation {
    condition     = (var.ref.branch == null) != (var.ref.tag == null)
    error_message = "Set exactly one of ref.branch and ref.tag."
  }
}

variable "default_branch" {
  description = "Branch whose infra/pipeline/*.yaml the deploy and apply builds run; they check out the ci build's commit themselves."
  type        = string
  default     = "main"
  nullable    = false
}

variable "previous_promotions" {
  description = "Bucket holding the promotion records of the previous environment (promotions/<commit>), which the ci build's gate requires for the commit; null for the first environment (dev)."
  type        = string
  default     = null
}

variable "require_approval" {
  description = "Split plan and apply (prod): the deploy build plans and saves the plan, and a separate apply build holds for approval, then applies exactly that plan."
  type        = bool
  default     = false
  nullable    = false
}

variable "ci_service_account" {
  description = "Service account id (projects/<p>/serviceAccounts/<email>) of the ci build: tests, dependency download, packaging, upload. It must have no deploy rights."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^projects/[^/]+/serviceAccounts/[^/]+$", var.ci_service_account))
    error_message = "The ci_service_account must be an id like projects/<p>/serviceAccounts/<email>."
  }
}

variable "deployer_service_account" {
  description = "Service account id of the deploy and apply builds: the only identity with rights to apply the environment."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^projects/[^/]+/serviceAccounts/[^/]+$", var.deployer_service_account))
    error_message = "The deployer_service_account must be an id like projects/<p>/serviceAccounts/<email>."
  }
}

variable "build_events_topic" {
  description = "Id of the project's cloud-builds Pub/Sub topic (Cloud Build publishes every build's status there)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^projects/[^/]+/topics/cloud-builds$", var.build_events_topic))
    error_message = "The build_events_topic must be projects/<p>/topics/cloud-builds: Cloud Build publishes to that topic only."
  }
}

variable "state_bucket" {
  description = "GCS bucket holding the Terraform state and the saved plans (the _TF_STATE_BUCKET substitution)."
  type        = string
  nullable    = false
}

variable "source_bucket" {
  description = "Bucket of function archives and of this environment's promotion records (the _SOURCE_BUCKET substitution)."
  type        = string
  nullable    = false
}
