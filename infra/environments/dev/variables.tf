variable "project_id" {
  description = "Project of this environment."
  type        = string
  nullable    = false
}

variable "region" {
  description = "Region of the functions, the database and the buckets."
  type        = string
  default     = "europe-west1"
  nullable    = false
}

variable "env" {
  description = "Environment name: the env label everywhere and the _ENV of its builds."
  type        = string
  nullable    = false

  validation {
    condition     = contains(["dev", "staging", "prod"], var.env)
    error_message = "The env must be dev, staging or prod."
  }
}

variable "repo_root" {
  description = "Repository root relative to this folder (where topics.yaml and functions/ live)."
  type        = string
  default     = "../../.."
  nullable    = false
}

variable "function_sources" {
  description = "Source archive object by function name, written by the pipeline (<name>-<sha256>.zip). Functions missing here use \"<name>.zip\"."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "platform_team" {
  description = "Team that runs the shared pieces (project, network, database, build) and receives their alerts."
  type        = string
  default     = "platform"
  nullable    = false
}

variable "network" {
  description = "Network settings: subnet_cidr of the serverless subnetwork and the private services access range."
  type = object({
    subnet_cidr            = optional(string, "10.10.0.0/24")
    private_services_start = optional(string, "10.64.0.0")
    private_services_bits  = optional(number, 20)
  })
  default  = {}
  nullable = false
}

variable "database" {
  description = "Cloud SQL sizing and protection: tier, disk_size_gb, availability_type (REGIONAL for HA), deletion_protection, retained_backups, and the PostgreSQL roles given to function users (they run their own migrations)."
  type = object({
    tier                = optional(string, "db-custom-1-3840")
    disk_size_gb        = optional(number, 10)
    availability_type   = optional(string, "ZONAL")
    deletion_protection = optional(bool, true)
    retained_backups    = optional(number, 7)
    database_roles      = optional(list(string), ["cloudsqlsuperuser"])
  })
  default  = {}
  nullable = false
}

variable "analytics" {
  description = "BigQuery: owning team, location, partition expiry (days, null = keep) and table deletion protection."
  type = object({
    team                      = optional(string, "data")
    location                  = optional(string, "EU")
    partition_expiration_days = optional(number)
    deletion_protection       = optional(bool, true)
  })
  default  = {}
  nullable = false
}

variable "min_instances" {
  description = "Warm instances per function and service (null keeps each manifest's min_instances)."
  type        = number
  default     = null
}

variable "orders_api" {
  description = "Orders API exposure: ingress, the IAM members allowed to call it (never allUsers), and the cron schedule of the outbox relay."
  type = object({
    ingress           = optional(string, "ALLOW_INTERNAL_AND_GCLB")
    invokers          = optional(map(string), {})
    outbox_relay_cron = optional(string, "* * * * *")
    outbox_relay_path = optional(string, "/internal/outbox/relay")
  })
  default  = {}
  nullable = false
}

variable "notification_channels" {
  description = "Notification channel ids by team (alert routing)."
  type        = map(list(string))
  default     = {}
  nullable    = false
}

variable "default_notification_channels" {
  description = "Channels for teams without their own."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "alert_thresholds" {
  description = "Alert thresholds (see the monitoring module's thresholds input)."
  type = object({
    oldest_unacked_age_seconds = optional(number, 600)
    error_ratio                = optional(number, 0.05)
    sql_cpu_utilization        = optional(number, 0.9)
    sql_disk_utilization       = optional(number, 0.85)
    duration_seconds           = optional(number, 300)
  })
  default  = {}
  nullable = false
}

variable "build" {
  description = "Cloud Build triggers: GitHub repository and branch, the service account builds run as, the state bucket, and whether builds wait for approval (prod)."
  type = object({
    github_owner     = string
    github_name      = string
    branch           = optional(string, "^main$")
    service_account  = string
    state_bucket     = string
    require_approval = optional(bool, false)
  })
  nullable = false
}
