variable "project_id" {
  description = "Project that holds the instance."
  type        = string
  nullable    = false
}

variable "region" {
  description = "Region of the instance."
  type        = string
  nullable    = false
}

variable "name" {
  description = "Instance name. No random suffix: a deleted name cannot be reused for about a week, so pick a new one deliberately."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.name))
    error_message = "The name must be lowercase letters, digits or dashes, starting with a letter, at most 63 characters."
  }
}

variable "env" {
  description = "Environment name, set as the env label."
  type        = string
  nullable    = false
}

variable "labels" {
  description = "Labels of the instance. Must include team; env is set by the module."
  type        = map(string)
  nullable    = false

  validation {
    condition     = contains(keys(var.labels), "team")
    error_message = "The labels must include \"team\" (the team that runs the database)."
  }
}

variable "private_network" {
  description = "Network id that the instance's private IP lives in (private services access must be connected: use the network module's id output)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^projects/[^/]+/global/networks/[^/]+$", var.private_network))
    error_message = "The private_network must be a network id like projects/<p>/global/networks/<name>."
  }
}

variable "database_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "POSTGRES_16"
  nullable    = false

  validation {
    condition     = can(regex("^POSTGRES_[0-9]+$", var.database_version))
    error_message = "The database_version must look like \"POSTGRES_16\"."
  }
}

variable "database" {
  description = "Name of the application database."
  type        = string
  default     = "platform"
  nullable    = false
}

variable "instance" {
  description = "Size and availability: tier, edition, disk size in GB, availability_type (ZONAL or REGIONAL for high availability) and deletion protection (keep true in prod)."
  type = object({
    tier                = optional(string, "db-custom-1-3840")
    edition             = optional(string, "ENTERPRISE")
    disk_size_gb        = optional(number, 10)
    disk_autoresize     = optional(bool, true)
    availability_type   = optional(string, "ZONAL")
    deletion_protection = optional(bool, true)
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.instance.availability_type)
    error_message = "The instance.availability_type must be ZONAL or REGIONAL."
  }
  validation {
    condition     = contains(["ENTERPRISE", "ENTERPRISE_PLUS"], var.instance.edition)
    error_message = "The instance.edition must be ENTERPRISE or ENTERPRISE_PLUS."
  }
  validation {
    condition     = var.instance.disk_size_gb >= 10
    error_message = "The instance.disk_size_gb must be at least 10."
  }
}

variable "backup" {
  description = "Automated backups: start time (UTC, HH:MM), retained backups, transaction log days for point-in-time recovery (1-7) and location."
  type = object({
    start_time                     = optional(string, "02:00")
    retained_backups               = optional(number, 14)
    transaction_log_retention_days = optional(number, 7)
    location                       = optional(string)
  })
  default  = {}
  nullable = false

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.backup.start_time))
    error_message = "The backup.start_time must be HH:MM in UTC."
  }
  validation {
    condition     = var.backup.transaction_log_retention_days >= 1 && var.backup.transaction_log_retention_days <= 7 && var.backup.retained_backups >= 1
    error_message = "The backup.transaction_log_retention_days must be 1..7 and retained_backups at least 1."
  }
}

variable "maintenance_window" {
  description = "Weekly maintenance window: day (1 = Monday .. 7 = Sunday), hour (UTC) and update track (canary, stable, week5)."
  type = object({
    day          = optional(number, 7)
    hour         = optional(number, 3)
    update_track = optional(string, "stable")
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.maintenance_window.day >= 1 && var.maintenance_window.day <= 7 && var.maintenance_window.hour >= 0 && var.maintenance_window.hour <= 23
    error_message = "The maintenance_window.day must be 1..7 and hour 0..23."
  }
  validation {
    condition     = contains(["canary", "stable", "week5"], var.maintenance_window.update_track)
    error_message = "The maintenance_window.update_track must be canary, stable or week5."
  }
}

variable "ssl_mode" {
  description = "TLS policy: ENCRYPTED_ONLY (the Cloud SQL connectors' mTLS and IAM authentication) or TRUSTED_CLIENT_CERTIFICATE_REQUIRED."
  type        = string
  default     = "ENCRYPTED_ONLY"
  nullable    = false

  validation {
    condition     = contains(["ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"], var.ssl_mode)
    error_message = "The ssl_mode must be ENCRYPTED_ONLY or TRUSTED_CLIENT_CERTIFICATE_REQUIRED: unencrypted connections are never allowed."
  }
}

variable "database_flags" {
  description = "Extra PostgreSQL flags by name; merged over the module's defaults (IAM authentication, connection and lock logging, statement timeout)."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = lookup(var.database_flags, "cloudsql.iam_authentication", "on") == "on"
    error_message = "The cloudsql.iam_authentication flag must stay on: functions log in with their service accounts."
  }
}

variable "iam_users" {
  description = "Extra IAM database users by key, e.g. operators: { oncall = { email = \"ops@example.com\", type = \"CLOUD_IAM_USER\" } }. Function service accounts get their users from the event-function module."
  type = map(object({
    email          = string
    type           = optional(string, "CLOUD_IAM_SERVICE_ACCOUNT")
    database_roles = optional(list(string), [])
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for k, u in var.iam_users : contains(["CLOUD_IAM_SERVICE_ACCOUNT", "CLOUD_IAM_USER", "CLOUD_IAM_GROUP"], u.type)])
    error_message = "Each iam_users type must be CLOUD_IAM_SERVICE_ACCOUNT, CLOUD_IAM_USER or CLOUD_IAM_GROUP."
  }
}
