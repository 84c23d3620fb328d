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
  description = "The service to call (an event-function module with trigger = null, or its outputs): service_name (short name of the Cloud Run service the invokers may call and the NEG points at), uri (the jobs' target and OIDC audience) and ingress (checked: ALLOW_INTERNAL_ONLY would be unreachable, and a load balancer needs ALLOW_INTERNAL_AND_GCLB)."
  type = object({
    service_name = string
    uri          = string
    ingress      = optional(string)
  })
  nullable = false

  validation {
    condition     = var.service.ingress != "ALLOW_INTERNAL_ONLY"
    error_message = "The service's ingress is ALLOW_INTERNAL_ONLY: no client outside the VPC could reach it. Use ALLOW_INTERNAL_AND_GCLB with a load_balancer, or ALLOW_ALL (IAM-authenticated direct access)."
  }
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

variable "labels" {
  description = "Labels of the load balancer's labelled resources (address, forwarding rules, Cloud Armor policy): must include team and env when load_balancer is set; function is added."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "load_balancer" {
  description = "External HTTPS load balancer in front of the service, null for none (dev: authenticated direct access with ALLOW_ALL ingress). domains: the hostnames of the Google-managed certificate (their DNS must point at the ip_address output); rate_limit: requests per interval_sec per client IP before Cloud Armor answers 429; allowed_source_ranges: CIDR ranges allowed through (empty allows every source). The service must use ALLOW_INTERNAL_AND_GCLB ingress; callers still need roles/run.invoker."
  type = object({
    domains = list(string)
    rate_limit = optional(object({
      count        = optional(number, 600)
      interval_sec = optional(number, 60)
    }), {})
    allowed_source_ranges = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.load_balancer == null || try(length(var.load_balancer.domains) > 0 && alltrue([for d in var.load_balancer.domains : can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", d))]), false)
    error_message = "The load_balancer.domains must be one or more DNS names such as \"orders.example.com\"."
  }
  validation {
    condition     = var.load_balancer == null || try(contains([10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700, 3600], var.load_balancer.rate_limit.interval_sec) && var.load_balancer.rate_limit.count >= 1, false)
    error_message = "The load_balancer.rate_limit.interval_sec must be one of Cloud Armor's intervals (10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700, 3600) and count at least 1."
  }
  validation {
    condition     = var.load_balancer == null || (contains(keys(var.labels), "team") && contains(keys(var.labels), "env"))
    error_message = "With a load_balancer, the labels must include team and env."
  }
}
