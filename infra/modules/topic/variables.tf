variable "project_id" {
  description = "Project that holds the topic."
  type        = string
  nullable    = false
}

variable "name" {
  description = "Pub/Sub topic id, e.g. \"order.created\" or \"payment.dlq\"."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9._~+%-]{2,254}$", var.name)) && !startswith(var.name, "goog")
    error_message = "The name must be a Pub/Sub topic id: 3-255 characters, starting with a letter, only letters, digits and . _ ~ + % -, not starting with \"goog\"."
  }
}

variable "env" {
  description = "Environment name, set as the env label."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.env))
    error_message = "The env must be a lowercase label value such as dev, staging or prod."
  }
}

variable "labels" {
  description = "Labels of the topic (and its retained subscription). Must include team; env is set by the module."
  type        = map(string)
  nullable    = false

  validation {
    condition     = contains(keys(var.labels), "team")
    error_message = "The labels must include \"team\" (the owning team)."
  }
}

variable "message_retention_duration" {
  description = "How long the topic keeps published messages for seek and late subscribers, in whole seconds like \"604800s\" (600s to 31 days)."
  type        = string
  default     = "604800s"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9]+s$", var.message_retention_duration)) && try(tonumber(trimsuffix(var.message_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.message_retention_duration, "s")) <= 2678400, false)
    error_message = "The message_retention_duration must be whole seconds like \"604800s\" between 600s and 2678400s (31 days)."
  }
}

variable "schema" {
  description = "Optional Pub/Sub schema that published messages must match: the schema id (projects/<p>/schemas/<s>) and the encoding (JSON or BINARY)."
  type = object({
    schema   = string
    encoding = optional(string, "JSON")
  })
  default = null

  validation {
    condition     = var.schema == null || try(contains(["JSON", "BINARY"], var.schema.encoding), false)
    error_message = "The schema.encoding must be JSON or BINARY."
  }
}

variable "publishers" {
  description = "IAM members allowed to publish, keyed by a stable name (e.g. the function): { payment = \"serviceAccount:fn-payment@p.iam.gserviceaccount.com\" }."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for m in values(var.publishers) : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "The publishers must not include allUsers or allAuthenticatedUsers."
  }
}

variable "retained_subscription" {
  description = "Optional pull subscription \"<name>--retained\" that keeps every message for an operator when nothing else consumes the topic (e.g. the dead-letter archive's own dead-letter topic). It never expires."
  type = object({
    message_retention_duration = optional(string, "604800s")
    ack_deadline_seconds       = optional(number, 60)
  })
  default = null
}
