variable "project_id" {
  description = "Project whose metrics are watched and where policies and the dashboard live."
  type        = string
  nullable    = false
}

variable "env" {
  description = "Environment name: set as the env user label of every policy and shown in names."
  type        = string
  nullable    = false
}

variable "notification_channels" {
  description = "Notification channel ids (projects/<p>/notificationChannels/<id>) by team: each alert goes to the channels of the team that owns what it watches."
  type        = map(list(string))
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue(flatten([for t, cs in var.notification_channels : [for c in cs : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))]]))
    error_message = "Each notification channel must be an id like projects/<p>/notificationChannels/<id>."
  }
}

variable "default_notification_channels" {
  description = "Channels for teams missing from notification_channels (e.g. the platform on-call)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "functions" {
  description = "Functions and HTTP services by name (the event-function module's outputs): team, service_name (the short Cloud Run service name, the service_name label of run.googleapis.com metrics; a full resource name is refused) and subscriptions (topic => subscription name; none for an HTTP service)."
  type = map(object({
    team          = string
    service_name  = string
    subscriptions = optional(map(string), {})
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for f in var.functions : !strcontains(f.service_name, "/")])
    error_message = "Each functions service_name must be the short Cloud Run service name: metrics label service_name with it, so a full resource name (projects/.../services/x) never matches."
  }
}

variable "topics" {
  description = "Topics by name (the topic module's outputs): labels (team, kind) and retained_subscription. Topics labelled kind = dead-letter alert on every message published to them."
  type = map(object({
    labels                = map(string)
    retained_subscription = optional(string)
  }))
  default  = {}
  nullable = false
}

variable "database" {
  description = "Cloud SQL instance to watch (null for none): the instance name and the team that runs it."
  type = object({
    instance_name = string
    team          = string
  })
  default = null
}

variable "thresholds" {
  description = "Alert thresholds: oldest unacked message age (seconds), 5xx ratio (0-1), Cloud SQL CPU and disk utilisation (0-1), how long a condition must hold (seconds), and the age of a parked ordering key that alerts (seconds; 0 alerts on every parked key)."
  type = object({
    oldest_unacked_age_seconds = optional(number, 600)
    error_ratio                = optional(number, 0.05)
    sql_cpu_utilization        = optional(number, 0.9)
    sql_disk_utilization       = optional(number, 0.85)
    duration_seconds           = optional(number, 300)
    parked_key_age_seconds     = optional(number, 0)
  })
  default  = {}
  nullable = false

  validation {
    condition = (
      var.thresholds.oldest_unacked_age_seconds >= 60 &&
      var.thresholds.error_ratio > 0 && var.thresholds.error_ratio < 1 &&
      var.thresholds.sql_cpu_utilization > 0 && var.thresholds.sql_cpu_utilization <= 1 &&
      var.thresholds.sql_disk_utilization > 0 && var.thresholds.sql_disk_utilization <= 1 &&
      var.thresholds.duration_seconds >= 0 &&
      var.thresholds.parked_key_age_seconds >= 0
    )
    error_message = "Thresholds: oldest_unacked_age_seconds >= 60, error_ratio in (0,1), SQL utilisations in (0,1], duration_seconds >= 0, parked_key_age_seconds >= 0."
  }
  validation {
    condition     = var.thresholds.duration_seconds % 60 == 0
    error_message = "The thresholds.duration_seconds must be a multiple of 60: Cloud Monitoring rejects other condition durations."
  }
}
