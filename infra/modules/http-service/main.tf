# What makes a function an HTTP service: who may call it. The service
# itself (runtime identity, build, database access) is an event-function
# with kind = "http"; this module grants its invokers and adds Cloud
# Scheduler jobs that call its endpoints with an OIDC token (the outbox
# relay).

locals {
  # "sched-" + 24 characters: the 30-character limit of service account
  # ids; long names are shortened with a stable hash, like the function's
  # own accounts.
  sa_stem = length(var.name) <= 24 ? var.name : "${substr(var.name, 0, 19)}-${substr(sha256(var.name), 0, 4)}"
}

resource "google_service_account" "scheduler" {
  count = length(var.scheduled_jobs) > 0 ? 1 : 0

  project      = var.project_id
  account_id   = "sched-${local.sa_stem}"
  display_name = "Service ${var.name} (scheduler)"
}

resource "google_cloud_scheduler_job" "default" {
  for_each = var.scheduled_jobs

  project          = var.project_id
  region           = var.region
  name             = "${var.name}-${each.key}"
  schedule         = each.value.schedule
  time_zone        = each.value.time_zone
  attempt_deadline = each.value.attempt_deadline

  retry_config {
    retry_count = each.value.retry_count
  }

  http_target {
    http_method = each.value.http_method
    uri         = "${var.service.uri}${each.value.path}"
    body        = each.value.body == "" ? null : base64encode(each.value.body)

    oidc_token {
      service_account_email = google_service_account.scheduler[0].email
      audience              = var.service.uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.scheduler]
}
