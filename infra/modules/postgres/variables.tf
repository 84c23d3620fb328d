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
  description = "Size and availability: tier, edition, disk size in GB, availability_type (ZONAL or REGIONAL for high availability), deletion protection (keep true in prod) and max_connections (set as the PostgreSQL flag; the clients' connections plus reserved_connections must fit in it)."
  type = object({
    tier                = optional(string, "db-custom-1-3840")
    edition             = optional(string, "ENTERPRISE")
    disk_size_gb        = optional(number, 10)
    disk_autoresize     = optional(bool, true)
    availability_type   = optional(string, "ZONAL")
    deletion_protection = optional(bool, true)
    max_connections     = optional(number, 100)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.instance.max_connections >= 25 && var.instance.max_connections <= 262143
    error_message = "The instance.max_connections must be 25..262143."
  }

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
  validation {
    condition     = var.backup.retained_backups > var.backup.transaction_log_retention_days
    error_message = "The backup.retained_backups must be greater than backup.transaction_log_retention_days: Cloud SQL rejects a backup retention that is not (API error 400)."
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
    condition     = alltrue([for k, u in var.iam_users : !contains(u.database_roles, "cloudsqlsuperuser")])
    error_message = "No iam_users entry may get cloudsqlsuperuser: the migrator is the only owner of the schema."
  }

  validation {
    condition     = alltrue([for k, u in var.iam_users : contains(["CLOUD_IAM_SERVICE_ACCOUNT", "CLOUD_IAM_USER", "CLOUD_IAM_GROUP"], u.type)])
    error_message = "Each iam_users type must be CLOUD_IAM_SERVICE_ACCOUNT, CLOUD_IAM_USER or CLOUD_IAM_GROUP."
  }
}

variable "clients" {
  description = "Most connections each client can hold open, by name (a function's max instances x pool size): their sum plus reserved_connections must not exceed instance.max_connections, or instances fail to connect under load."
  type        = map(number)
  default     = {}
  nullable    = false
}

variable "reserved_connections" {
  description = "Connections kept free of the clients: Cloud SQL's superuser reserve, the migrator job, operators."
  type        = number
  default     = 10
  nullable    = false
}

variable "migrations" {
  description = "Migration job (null for none): a Cloud Run v2 job \"<name>-migrate\" running image with command (default [\"migrate\", \"up\"]) as the dedicated migrator service account, the only IAM database user with cloudsqlsuperuser, so it owns the schema. It reaches the private IP through Direct VPC egress (network and subnetwork names). function_users maps each function to its IAM database user: the job receives them as MIGRATE_FUNCTION_USERS (JSON) and must grant each only its own tables (docs/infrastructure.md, \"What the Go side must provide\"). The pipeline sets the image of each release and runs the job before deploying functions."
  type = object({
    image          = string
    command        = optional(list(string), ["migrate", "up"])
    timeout        = optional(string, "600s")
    network        = string
    subnetwork     = string
    function_users = optional(map(string), {})
  })
  default = null

  validation {
    condition     = var.migrations == null || try(!strcontains(var.migrations.network, "/") && !strcontains(var.migrations.subnetwork, "/"), false)
    error_message = "The migrations.network and migrations.subnetwork must be names, not resource paths: Direct VPC egress takes names."
  }
  validation {
    condition     = var.migrations == null || try(can(regex("^[0-9]+s$", var.migrations.timeout)), false)
    error_message = "The migrations.timeout must be whole seconds such as \"600s\"."
  }
}
