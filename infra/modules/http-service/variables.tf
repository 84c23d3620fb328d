variable "project_id" {
  description = "Project of the service, its scheduler jobs and their service account."
  type        = string
  nullable    = false
}

variable "region" {
  description = "Region of the service and of the Cloud Scheduler jobs, e.g. \"europe-west1\"."
  type        = string
  nullable    = false
}

variable "name" {
  description = "Service name (the manifest name): prefix of the job names and of the scheduler service account id."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name))
    error_message = "The name must be 3-30 lowercase letters, digits or dashes, starting with a letter and not ending with a dash (the manifest naming rule)."
  }
}

variable "service" {
  description = "The service to call (an event-function module with kind = \"http\", or its outputs): service_name (the Cloud Run service the invokers may call) and uri (the jobs' target and OIDC audience)."
  type = object({
    service_name = string
    uri          = string
  })
  nullable = false
}

variable "invokers" {
  description = "IAM members allowed to call the service, keyed by a stable name: { frontend = \"serviceAccount:web@p.iam.gserviceaccount.com\" }. allUsers and allAuthenticatedUsers are refused."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for m in values(var.invokers) : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "The invokers must not include allUsers or allAuthenticatedUsers: the service is authenticated only."
  }
}

variable "scheduled_jobs" {
  description = "Cloud Scheduler jobs that call an endpoint of the service with an OIDC token, by job name suffix (e.g. the outbox relay): path, cron schedule, time_zone, http_method, attempt_deadline (\"60s\") and retry_count. Each job's identity holds roles/run.invoker on this service only."
  type = map(object({
    path             = string
    schedule         = string
    time_zone        = optional(string, "Etc/UTC")
    http_method      = optional(string, "POST")
    attempt_deadline = optional(string, "60s")
    retry_count      = optional(number, 0)
    body             = optional(string, "")
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for k, j in var.scheduled_jobs : startswith(j.path, "/") && contains(["GET", "POST", "PUT"], j.http_method)])
    error_message = "Each scheduled job needs a path starting with \"/\" and an http_method of GET, POST or PUT."
  }
  validation {
    condition     = alltrue([for k, j in var.scheduled_jobs : can(regex("^[a-z][a-z0-9-]{0,40}$", k))])
    error_message = "Scheduled job keys must be short lowercase names such as \"outbox-relay\"."
  }
}
