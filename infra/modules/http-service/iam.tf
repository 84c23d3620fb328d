resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = var.invokers

  project  = var.project_id
  location = var.region
  name     = var.service.service_name
  role     = "roles/run.invoker"
  member   = each.value
}

# The scheduler identity may invoke this service and nothing else.
resource "google_cloud_run_v2_service_iam_member" "scheduler" {
  count = length(var.scheduled_jobs) > 0 ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = var.service.service_name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler[0].email}"
}
