variable "project_id" {
  description = "Project that holds the function, its service accounts and subscriptions."
  type        = string
  nullable    = false
}

variable "region" {
  description = "Region of the function, e.g. \"europe-west1\"."
  type        = string
  nullable    = false
}

variable "name" {
  description = "Function name: the manifest name and folder (3-30 lowercase letters, digits or dashes). Also the Cloud Run service name."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name))
    error_message = "The name must be 3-30 lowercase letters, digits or dashes, starting with a letter and not ending with a dash (the manifest naming rule)."
  }
}

variable "ingress" {
  description = "Who can reach the function over the network. A function with a trigger is always ALLOW_INTERNAL_ONLY (Pub/Sub push); an HTTP one (trigger = null) uses ALLOW_INTERNAL_AND_GCLB behind the http-service module's load balancer, or ALLOW_ALL for authenticated direct access (dev). Callers always need roles/run.invoker: unauthenticated calls are never allowed."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"
  nullable    = false

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_ALL"], var.ingress)
    error_message = "The ingress must be ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB or ALLOW_ALL."
  }
}

variable "env" {
  description = "Environment name (dev, staging, prod); set as the env label and the ENV variable."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.env))
    error_message = "The env must be a lowercase label value such as dev, staging or prod."
  }
}

variable "team" {
  description = "Owning team from the manifest (owner.team); set as the team label."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.team))
    error_message = "The team must be 3-30 lowercase letters, digits or dashes."
  }
}

variable "labels" {
  description = "Extra labels for every labelled resource; team, function and env are always set by the module."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "entry_point" {
  description = "Name the function registers with functions-framework-go (manifest entry_point)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Z][A-Za-z0-9_]*$", var.entry_point))
    error_message = "The entry_point must be an exported Go identifier such as \"Payment\"."
  }
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "go126"
  nullable    = false

  validation {
    condition     = can(regex("^go[0-9]+$", var.runtime))
    error_message = "The runtime must be a Go runtime such as \"go126\"."
  }
}

variable "source_archive" {
  description = "Source zip in Cloud Storage (the function folder with shared vendored), named by content hash so a new archive redeploys."
  type = object({
    bucket = string
    object = string
  })
  nullable = false

  validation {
    condition     = endswith(var.source_archive.object, ".zip") && length(var.source_archive.bucket) > 2
    error_message = "The source_archive must name a bucket and a .zip object."
  }
}

variable "build" {
  description = "Build settings: the service account Cloud Build uses for this function and the Artifact Registry repository (projects/<p>/locations/<r>/repositories/<id>) for its image. Null fields use Google's defaults."
  type = object({
    service_account   = optional(string)
    docker_repository = optional(string)
  })
  default  = {}
  nullable = false
}

variable "resources" {
  description = "Scaling and sizing from the manifest: memory (\"256Mi\"), cpu (\"1\"), concurrency, min_instances, max_instances, timeout_seconds."
  type = object({
    memory          = string
    cpu             = string
    concurrency     = number
    min_instances   = optional(number, 0)
    max_instances   = number
    timeout_seconds = number
  })
  nullable = false

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.resources.memory))
    error_message = "The resources.memory must look like \"256Mi\" or \"1Gi\"."
  }
  validation {
    condition     = var.resources.concurrency >= 1 && var.resources.concurrency <= 1000 && (var.resources.concurrency == 1 || try(tonumber(var.resources.cpu) >= 1, false))
    error_message = "The resources.concurrency must be 1..1000, and above 1 only with at least 1 cpu."
  }
  validation {
    condition     = var.resources.min_instances >= 0 && var.resources.max_instances >= 1 && var.resources.max_instances >= var.resources.min_instances
    error_message = "The resources.max_instances must be at least 1 and at least min_instances (which must not be negative)."
  }
  validation {
    condition     = var.resources.timeout_seconds >= 1 && var.resources.timeout_seconds <= 3600
    error_message = "The resources.timeout_seconds must be 1..3600 (and at most 540 for a cloudevent function)."
  }
}

variable "min_instances" {
  description = "Overrides resources.min_instances when set (environments keep warm instances in prod only)."
  type        = number
  default     = null

  validation {
    condition     = var.min_instances == null || try(var.min_instances >= 0, false)
    error_message = "The min_instances must not be negative."
  }
}

variable "environment" {
  description = "Plain environment variables from the manifest (env). The module's own variables (ENV, GOOGLE_CLOUD_PROJECT, DEAD_LETTER_TOPIC, DB_*, BIGQUERY_*) take precedence."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "secret_environment" {
  description = "Secret Manager secrets exposed as environment variables, by variable name: { API_KEY = { secret = \"gw-key\", version = \"latest\" } }. The runtime service account gets secretAccessor on each."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for k, v in var.secret_environment : can(regex("^[A-Za-z0-9_-]{1,255}$", v.secret)) && (v.version == "latest" || can(regex("^[1-9][0-9]*$", v.version)))])
    error_message = "Each secret_environment entry needs a Secret Manager secret id and a version that is \"latest\" or a number."
  }
}

variable "topics" {
  description = "Every topic of the environment by name (the topic module's outputs): the module looks up the ids of the topics it publishes to, consumes and dead-letters to."
  type = map(object({
    id   = string
    name = string
  }))
  nullable = false
}

variable "publishes" {
  description = "Topic names the function publishes to (manifest publishes); its service account gets roles/pubsub.publisher on each."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "subscription_message_retention" {
  description = "How long each subscription keeps unacknowledged messages, in whole seconds (at most 7 days)."
  type        = string
  default     = "604800s"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9]+s$", var.subscription_message_retention)) && try(tonumber(trimsuffix(var.subscription_message_retention, "s")) >= 600 && tonumber(trimsuffix(var.subscription_message_retention, "s")) <= 604800, false)
    error_message = "The subscription_message_retention must be whole seconds between 600s and 604800s."
  }
}

variable "trigger" {
  description = "Pub/Sub delivery, null for an HTTP function (fabric's trigger_config = null). subscriptions: push subscriptions by consumed topic name from the manifest (ordering, filter, max_delivery_attempts 5..100, min_backoff/max_backoff \"10s\" up to 600s, ack_deadline_seconds 10..600), each named \"<function>--<topic>\", at least one; dead_letter_topic: this function's \"<name>.dlq\", the dead_letter_policy of every subscription and the handler's destination for permanent failures; pubsub_service_agent: service-<project number>@gcp-sa-pubsub.iam.gserviceaccount.com, which forwards dead letters and mints the push OIDC tokens."
  type = object({
    dead_letter_topic    = string
    pubsub_service_agent = string
    subscriptions = map(object({
      topic                 = optional(string)
      ordering              = optional(bool, false)
      filter                = optional(string, "")
      max_delivery_attempts = number
      min_backoff           = string
      max_backoff           = string
      ack_deadline_seconds  = number
      dead_letters          = optional(bool, false)
    }))
  })
  default = null

  validation {
    condition     = var.trigger == null || try(length(var.trigger.subscriptions) > 0, false)
    error_message = "A trigger must consume at least one topic (subscriptions)."
  }
  validation {
    condition     = var.trigger == null || can(regex("\\.dlq$", var.trigger.dead_letter_topic))
    error_message = "The trigger.dead_letter_topic must end in \".dlq\" (manifest.DeadLetterTopic)."
  }
  validation {
    condition     = var.trigger == null || can(regex("^service-[0-9]+@gcp-sa-pubsub\\.iam\\.gserviceaccount\\.com$", var.trigger.pubsub_service_agent))
    error_message = "The trigger.pubsub_service_agent must be service-<project number>@gcp-sa-pubsub.iam.gserviceaccount.com."
  }
  validation {
    condition     = alltrue([for k, s in try(var.trigger.subscriptions, {}) : s.max_delivery_attempts >= 5 && s.max_delivery_attempts <= 100])
    error_message = "Each trigger subscription's max_delivery_attempts must be 5..100 (Pub/Sub's limits)."
  }
  validation {
    condition = alltrue([for k, s in try(var.trigger.subscriptions, {}) :
      can(regex("^[0-9]+s$", s.min_backoff)) && can(regex("^[0-9]+s$", s.max_backoff)) &&
      try(tonumber(trimsuffix(s.min_backoff, "s")) <= tonumber(trimsuffix(s.max_backoff, "s")) && tonumber(trimsuffix(s.max_backoff, "s")) <= 600, false)
    ])
    error_message = "Each trigger subscription's min_backoff and max_backoff must be whole seconds like \"10s\", min <= max <= 600s."
  }
  validation {
    condition     = alltrue([for k, s in try(var.trigger.subscriptions, {}) : s.ack_deadline_seconds >= 10 && s.ack_deadline_seconds <= 600])
    error_message = "Each trigger subscription's ack_deadline_seconds must be 10..600."
  }
  validation {
    condition     = alltrue([for k, s in try(var.trigger.subscriptions, {}) : length(s.filter) <= 256])
    error_message = "Each trigger subscription's filter must be at most 256 characters."
  }
}

variable "network" {
  description = "Direct VPC egress for private ranges (needed to reach Cloud SQL's private IP): the network and subnetwork NAMES (the Cloud Run API takes names, not resource paths) and the subnetwork's region. The runtime account gets roles/compute.networkUser on that subnetwork. Null means no VPC egress."
  type = object({
    network           = string
    subnetwork        = string
    subnetwork_region = optional(string)
  })
  default = null

  validation {
    condition     = var.network == null || try(!strcontains(var.network.network, "/") && !strcontains(var.network.subnetwork, "/"), false)
    error_message = "The network.network and network.subnetwork must be names such as \"platform\", not resource paths: Direct VPC egress takes names."
  }
}

variable "cloudsql" {
  description = "Cloud SQL access (manifest database: true), null for none: Cloud SQL client and instance user on this instance only, and an IAM database user for the runtime service account with database_roles (PostgreSQL roles granted to it; never cloudsqlsuperuser: the migrator job owns the schema and grants each function role its own tables); pool_size, the connections each instance opens at most (DB_MAX_CONNS), which with max_instances makes the function's share of the server's max_connections (the database_connections output). The database user is abandoned on destroy (deletion_policy ABANDON) because objects it owns or was granted keep PostgreSQL from dropping it."
  type = object({
    instance_name            = string
    instance_connection_name = string
    database                 = string
    database_roles           = optional(list(string), [])
    pool_size                = optional(number, 10)
  })
  default = null

  validation {
    condition     = var.cloudsql == null || try(var.cloudsql.pool_size >= 1, false)
    error_message = "The cloudsql.pool_size must be at least 1."
  }

  validation {
    condition     = var.cloudsql == null || try(!contains(var.cloudsql.database_roles, "cloudsqlsuperuser"), false)
    error_message = "A function's database user must not get cloudsqlsuperuser: only the migrator owns the schema."
  }
}

variable "bigquery" {
  description = "BigQuery write access (manifest bigquery: true), null for none: roles/bigquery.dataEditor on this dataset only."
  type = object({
    dataset_id = string
  })
  default = null
}
