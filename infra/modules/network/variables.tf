variable "project_id" {
  description = "Project that holds the network."
  type        = string
  nullable    = false
}

variable "region" {
  description = "Region of the serverless subnetwork (the functions' region)."
  type        = string
  nullable    = false
}

variable "env" {
  description = "Environment name, set as the env label of what takes labels."
  type        = string
  nullable    = false
}

variable "labels" {
  description = "Labels of the labelled resources (the private services range). Must include team; env is set by the module."
  type        = map(string)
  nullable    = false

  validation {
    condition     = contains(keys(var.labels), "team")
    error_message = "The labels must include \"team\"."
  }
}

variable "name" {
  description = "Name of the VPC network; the subnetwork and the private services range are named after it."
  type        = string
  default     = "platform"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$", var.name))
    error_message = "The name must be 1-42 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "subnet_cidr" {
  description = "IPv4 range of the subnetwork that the functions' direct VPC egress uses (at least a /26)."
  type        = string
  default     = "10.10.0.0/24"
  nullable    = false

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0)) && try(tonumber(split("/", var.subnet_cidr)[1]) <= 26, false)
    error_message = "The subnet_cidr must be an IPv4 CIDR range of /26 or larger, e.g. \"10.10.0.0/24\"."
  }
}

variable "private_services_range" {
  description = "Range reserved for private services access (Cloud SQL private IP): the start address and prefix length (at most 24)."
  type = object({
    address       = optional(string, "10.64.0.0")
    prefix_length = optional(number, 20)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.private_services_range.prefix_length >= 8 && var.private_services_range.prefix_length <= 24
    error_message = "The private_services_range.prefix_length must be between 8 and 24."
  }
}
