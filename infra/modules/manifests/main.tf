# Reads the manifests the Go code reads (shared/manifest) and reshapes them
# into the inputs of the other modules, so environments stay logic-free.
# Naming rules mirror shared/manifest: the dead-letter topic of function F is
# "F.dlq" (DeadLetterTopic) and the subscription of F to topic T is "F--T"
# (SubscriptionID). The Go validator is the authority on manifest contents;
# this module only applies defaults for optional keys.

locals {
  dead_letter_suffix = ".dlq"

  catalogue = yamldecode(file("${var.repo_root}/topics.yaml")).topics

  manifest_files = sort(fileset(var.repo_root, "functions/*/function.yaml"))

  raw = {
    for f in local.manifest_files :
    basename(dirname(f)) => yamldecode(file("${var.repo_root}/${f}"))
  }

  # Every manifest with optional keys filled in and durations as numbers
  # where Terraform arguments want numbers.
  functions = {
    for name, m in local.raw : name => {
      name        = name
      description = m.description
      team        = m.owner.team
      codeowners  = m.owner.codeowners
      kind        = m.kind
      entry_point = m.entry_point
      idempotency = m.idempotency
      database    = try(m.database, false) == true
      bigquery    = try(m.bigquery, false) == true
      # "*" alone (shared/manifest.PublishesAll) is every catalogue topic:
      # the outbox relay publishes whatever the outbox holds.
      publishes = (try(m.publishes, null) == null ? [] :
      m.publishes == ["*"] ? sort(keys(local.catalogue)) : m.publishes)
      # An internal HTTP service is called only by its own schedules: no
      # invokers, no load balancer.
      internal = try(m.internal, false) == true
      schedules = {
        for s in try(m.schedules, null) == null ? [] : m.schedules : s.name => {
          path     = s.path
          schedule = s.cron
        }
      }
      consumes_dead_letters = try(m.consumes_dead_letters, null) != null
      env                   = { for k, v in try(m.env, null) == null ? {} : m.env : k => tostring(v) }
      secret_env = {
        for k, v in try(m.secret_env, null) == null ? {} : m.secret_env : k => {
          secret  = v.secret
          version = tostring(v.version)
        }
      }
      resources = {
        memory          = m.resources.memory
        cpu             = tostring(m.resources.cpu)
        concurrency     = m.resources.concurrency
        min_instances   = try(m.resources.min_instances, 0)
        max_instances   = m.resources.max_instances
        timeout_seconds = tonumber(trimsuffix(m.resources.timeout, "s"))
      }
    }
  }

  event_function_names = sort([for name, f in local.functions : name if f.kind == "cloudevent"])
  http_service_names   = sort([for name, f in local.functions : name if f.kind == "http"])

  # The dead-letter topic of every cloudevent function (every consumer).
  dead_letter_topics = { for name in local.event_function_names : name => "${name}${local.dead_letter_suffix}" }

  # Dead-letter topics consumed by a consumes_dead_letters function: those of
  # every other function.
  dead_letter_consumers = [for name in local.event_function_names : name if local.functions[name].consumes_dead_letters]

  delivery = {
    for name, m in local.raw : name => merge(
      {
        for s in try(m.consumes, null) == null ? [] : m.consumes : s.topic => {
          topic                 = s.topic
          ordering              = try(s.ordering, false) == true
          filter                = try(s.filter, null) == null ? "" : s.filter
          max_delivery_attempts = s.max_delivery_attempts
          min_backoff           = s.min_backoff
          max_backoff           = s.max_backoff
          ack_deadline_seconds  = tonumber(trimsuffix(s.ack_deadline, "s"))
          dead_letters          = false
        }
      },
      try(m.consumes_dead_letters, null) == null ? {} : {
        for other, topic in local.dead_letter_topics : topic => {
          topic                 = topic
          ordering              = false
          filter                = try(m.consumes_dead_letters.filter, null) == null ? "" : m.consumes_dead_letters.filter
          max_delivery_attempts = m.consumes_dead_letters.max_delivery_attempts
          min_backoff           = m.consumes_dead_letters.min_backoff
          max_backoff           = m.consumes_dead_letters.max_backoff
          ack_deadline_seconds  = tonumber(trimsuffix(m.consumes_dead_letters.ack_deadline, "s"))
          dead_letters          = true
        } if other != name
      }
    )
  }

  # Dead-letter topics no function consumes (the dead-letter archive's own):
  # they get a retained pull subscription and an alert instead.
  consumed_topics               = toset(flatten([for name in local.event_function_names : keys(local.delivery[name])]))
  unconsumed_dead_letter_topics = sort([for name, t in local.dead_letter_topics : t if !contains(local.consumed_topics, t)])

  topics = merge(
    {
      for t, v in local.catalogue : t => {
        name        = t
        description = v.description
        team        = v.owner
        retention   = try(v.retention, null) == null ? "604800s" : v.retention
        dead_letter = false
        function    = ""
        labels      = { team = v.owner, kind = "domain" }
        # Domain topics are consumed by functions or not at all.
        retained_subscription = null
      }
    },
    {
      for fn, t in local.dead_letter_topics : t => {
        name        = t
        description = "Dead-letter topic of the ${fn} function."
        team        = local.functions[fn].team
        retention   = "604800s"
        dead_letter = true
        function    = fn
        labels      = { team = local.functions[fn].team, function = fn, kind = "dead-letter" }
        # Nothing consumes the archive's own dead-letter topic: keep its
        # messages in a pull subscription for an operator.
        retained_subscription = contains(local.unconsumed_dead_letter_topics, t) ? {} : null
      }
    }
  )

  # What a function module call needs, for every manifest: a cloudevent
  # function's dead-letter topic and subscriptions; null and none for an
  # http one.
  deployments = {
    for name, f in local.functions : name => merge(f, {
      dead_letter_topic = lookup(local.dead_letter_topics, name, null)
      subscriptions     = local.delivery[name]
    })
  }

  event_functions = { for name in local.event_function_names : name => local.deployments[name] }
  http_services   = { for name in local.http_service_names : name => local.deployments[name] }

  teams = {
    for team in distinct([for f in local.functions : f.team]) : team => sort([for name, f in local.functions : name if f.team == team])
  }
}
