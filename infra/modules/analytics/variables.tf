variable "project_id" {
  description = "Project that holds the dataset."
  type        = string
  nullable    = false
}

variable "location" {
  description = "BigQuery location of the dataset, e.g. \"EU\" or \"europe-west1\"."
  type        = string
  nullable    = false
}

variable "dataset_id" {
  description = "Dataset id."
  type        = string
  default     = "analytics"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.dataset_id)) && length(var.dataset_id) <= 1024
    error_message = "The dataset_id must be letters, digits or underscores, starting with a letter or underscore."
  }
}

variable "env" {
  description = "Environment name, set as the env label."
  type        = string
  nullable    = false
}

variable "labels" {
  description = "Labels of the dataset and tables. Must include team; env is set by the module."
  type        = map(string)
  nullable    = false

  validation {
    condition     = contains(keys(var.labels), "team")
    error_message = "The labels must include \"team\"."
  }
}

variable "schemas" {
  description = "BigQuery JSON schemas (the text of the files the functions embed): events (functions/analytics/schema/events.json) and dead_letters (functions/deadletter/schema/dead_letters.json)."
  type = object({
    events       = string
    dead_letters = string
  })
  nullable = false

  validation {
    condition     = contains([for f in try(jsondecode(var.schemas.events), []) : f.name if f.type == "TIMESTAMP"], "event_time") && contains([for f in try(jsondecode(var.schemas.events), []) : f.name], "event_type")
    error_message = "The events schema must be a JSON array of fields with a TIMESTAMP event_time (partitioning) and an event_type (clustering)."
  }
  validation {
    condition     = contains([for f in try(jsondecode(var.schemas.dead_letters), []) : f.name if f.type == "TIMESTAMP"], "dead_lettered_at")
    error_message = "The dead_letters schema must be a JSON array of fields with a TIMESTAMP dead_lettered_at (partitioning)."
  }
}

variable "tables" {
  description = "Table settings: partition expiration in days (null keeps partitions forever) and deletion protection (keep true outside throwaway projects)."
  type = object({
    events_partition_expiration_days       = optional(number)
    dead_letters_partition_expiration_days = optional(number)
    deletion_protection                    = optional(bool, true)
  })
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for d in [var.tables.events_partition_expiration_days, var.tables.dead_letters_partition_expiration_days] : d == null || try(d >= 1, false)])
    error_message = "Partition expirations must be at least 1 day, or null."
  }
}

variable "writers" {
  description = "Extra IAM members with roles/bigquery.dataEditor on the dataset, by key. The analytics and dead-letter functions get theirs from the event-function module (manifest bigquery: true)."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for m in values(var.writers) : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "The writers must not include allUsers or allAuthenticatedUsers."
  }
}
