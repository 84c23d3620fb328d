variable "project_id" {
  description = "Project of the environment: everything is deployed into it."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "The project_id must be a Google Cloud project id (6-30 lowercase letters, digits or dashes)."
  }
}

variable "region" {
  description = "Region of the functions, the database, the network and the buckets."
  type        = string
  default     = "europe-west1"
  nullable    = false
}

variable "env" {
  description = "Environment name: the env label everywhere, the ENV of every function and the _ENV of its builds."
  type        = string
  nullable    = false

  validation {
    condition     = contains(["dev", "staging", "prod"], var.env)
    error_message = "The env must be dev, staging or prod."
  }
}

variable "function_sources" {
  description = "Source archive object by function name, written by the pipeline (<name>-<sha256>.zip). Functions missing here use \"<name>.zip\"."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for o in values(var.function_sources) : endswith(o, ".zip")])
    error_message = "Each function_sources entry must name a .zip object."
  }
}

variable "source_bucket" {
  description = "Bucket of function source archives, created by the bootstrap module before the first pipeline run (its source_bucket output, \"<project_id>-function-sources\" by default)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", var.source_bucket))
    error_message = "The source_bucket must be a Cloud Storage bucket name."
  }
}

variable "image_retention" {
  description = "Artifact Registry cleanup of the function images (the project-services module's image_retention; unset values keep its defaults)."
  type = object({
    keep_count        = optional(number)
    delete_after_days = optional(number)
  })
  default  = {}
  nullable = false
}

variable "platform_team" {
  description = "Team that runs the shared pieces (project, network, database, build) and receives their alerts."
  type        = string
  default     = "platform"
  nullable    = false
}

variable "network" {
  description = "Network settings (the network module's inputs; unset values keep its defaults): subnet_cidr of the functions' egress subnetwork and the private services access range (address, prefix_length)."
  type = object({
    subnet_cidr = optional(string)
    private_services_range = optional(object({
      address       = optional(string)
      prefix_length = optional(number)
    }), {})
  })
  default  = {}
  nullable = false
}

variable "database" {
  description = "Cloud SQL: tier, disk_size_gb, availability_type (REGIONAL for HA), deletion_protection, retained_backups and transaction_log_retention_days (unset values keep the postgres module's defaults; backups must outnumber log days), max_connections (the server flag), pool_size (DB_MAX_CONNS of each function unless its manifest env sets it; max instances x pool size, summed over functions, must fit in max_connections), function_roles (PostgreSQL roles given to every function user; never cloudsqlsuperuser) and migrator_image (the migration job's first image; the pipeline sets the image of each release)."
  type = object({
    tier                           = optional(string)
    disk_size_gb                   = optional(number)
    availability_type              = optional(string)
    deletion_protection            = optional(bool)
    retained_backups               = optional(number, 14)
    transaction_log_retention_days = optional(number, 7)
    max_connections                = optional(number, 100)
    pool_size                      = optional(number, 2)
    function_roles                 = optional(list(string), [])
    migrator_image                 = optional(string, "us-docker.pkg.dev/cloudrun/container/job:latest")
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.database.tier == null || can(regex("^db-", var.database.tier))
    error_message = "The database.tier must be a Cloud SQL tier such as \"db-custom-1-3840\"."
  }
  validation {
    condition     = !contains(var.database.function_roles, "cloudsqlsuperuser")
    error_message = "The database.function_roles must not include cloudsqlsuperuser: only the migrator owns the schema."
  }
  validation {
    condition     = var.database.pool_size >= 1
    error_message = "The database.pool_size must be at least 1."
  }
}

variable "analytics" {
  description = "BigQuery: owning team, dataset location, partition expiry of both tables (days, null keeps partitions) and table deletion protection."
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
  description = "Warm instances of every function and service (null keeps each manifest's min_instances)."
  type        = number
  default     = null
}

variable "orders_api" {
  description = "Exposure of the public HTTP services (the orders API; internal ones such as the relay are called only by their manifest's schedules): the IAM members allowed to call them (never allUsers), and load_balancer: null for authenticated direct access (ingress ALLOW_ALL, dev), or an external HTTPS load balancer with Cloud Armor (ingress ALLOW_INTERNAL_AND_GCLB): domains by service name, rate_limit and allowed_source_ranges (the http-service module's load_balancer)."
  type = object({
    invokers = optional(map(string), {})
    load_balancer = optional(object({
      domains = map(list(string))
      rate_limit = optional(object({
        count        = optional(number, 600)
        interval_sec = optional(number, 60)
      }), {})
      allowed_source_ranges = optional(list(string), [])
    }))
  })
  default  = {}
  nullable = false
}

variable "alerting" {
  description = "Alert routing and thresholds: notification channel ids by team, the channels of teams without their own, and thresholds (the monitoring module's thresholds input; unset values keep its defaults)."
  type = object({
    notification_channels         = optional(map(list(string)), {})
    default_notification_channels = optional(list(string), [])
    thresholds                    = optional(map(number), {})
  })
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for k in keys(var.alerting.thresholds) : contains(["oldest_unacked_age_seconds", "error_ratio", "sql_cpu_utilization", "sql_disk_utilization", "duration_seconds", "parked_key_age_seconds"], k)])
    error_message = "The alerting.thresholds keys must be oldest_unacked_age_seconds, error_ratio, sql_cpu_utilization, sql_disk_utilization, duration_seconds or parked_key_age_seconds."
  }
}
