# The pipeline of one environment: one build per environment per commit,
# never one per function (docs/infrastructure.md, "Pipeline").
#
#   ci      push to the branch (dev) or of a release tag (staging, prod):
#           cloudbuild.yaml as the CI account, which has no deploy rights:
#           promotion gate, go mod download, make test, make package, upload
#           of the content-addressed archives.
#   deploy  Pub/Sub on the project's cloud-builds topic when that ci build
#           succeeds: infra/pipeline/deploy.yaml as the deployer: secret
#           check, init, plan; applies the saved plan unless approval is
#           required.
#   apply   only with require_approval (prod): Pub/Sub when the deploy build
#           (the plan) succeeds; holds for approval, then
#           infra/pipeline/apply.yaml applies exactly that saved plan.
#
# Every function folder is in the one ci build, so a new folder needs no
# trigger edit.

locals {
  repo_uri = "https://github.com/${var.github.owner}/${var.github.name}"

  common = {
    _ENV                 = var.env
    _REGION              = var.region
    _TF_STATE_BUCKET     = var.state_bucket
    _SOURCE_BUCKET       = var.source_bucket
    _PREVIOUS_PROMOTIONS = var.previous_promotions == null ? "" : var.previous_promotions
  }
}

resource "google_cloudbuild_trigger" "ci" {
  project         = var.project_id
  location        = var.location
  name            = "${var.env}-ci"
  filename        = "cloudbuild.yaml"
  service_account = var.ci_service_account
  tags            = [var.env, "${var.env}-ci"]
  substitutions   = local.common

  github {
    owner = var.github.owner
    name  = var.github.name
    push {
      branch = var.ref.branch
      tag    = var.ref.tag
    }
  }
}

resource "google_cloudbuild_trigger" "deploy" {
  project         = var.project_id
  location        = var.location
  name            = "${var.env}-deploy"
  service_account = var.deployer_service_account
  tags            = [var.env, "${var.env}-deploy"]
  filter          = "_CI_STATUS == \"SUCCESS\" && _CI_TRIGGER == \"${google_cloudbuild_trigger.ci.trigger_id}\""
  substitutions = merge(local.common, {
    _CI_STATUS   = "$(body.message.data.status)"
    _CI_TRIGGER  = "$(body.message.data.buildTriggerId)"
    _CI_BUILD_ID = "$(body.message.data.id)"
    _COMMIT      = "$(body.message.data.substitutions.COMMIT_SHA)"
    _APPLY       = var.require_approval ? "false" : "true"
  })

  pubsub_config {
    topic = var.build_events_topic
  }

  source_to_build {
    uri       = local.repo_uri
    ref       = "refs/heads/${var.default_branch}"
    repo_type = "GITHUB"
  }

  git_file_source {
    path      = "infra/pipeline/deploy.yaml"
    uri       = local.repo_uri
    revision  = "refs/heads/${var.default_branch}"
    repo_type = "GITHUB"
  }
}

resource "google_cloudbuild_trigger" "apply" {
  count = var.require_approval ? 1 : 0

  project         = var.project_id
  location        = var.location
  name            = "${var.env}-apply"
  service_account = var.deployer_service_account
  tags            = [var.env, "${var.env}-apply"]
  filter          = "_PLAN_STATUS == \"SUCCESS\" && _PLAN_TRIGGER == \"${google_cloudbuild_trigger.deploy.trigger_id}\""
  substitutions = merge(local.common, {
    _PLAN_STATUS   = "$(body.message.data.status)"
    _PLAN_TRIGGER  = "$(body.message.data.buildTriggerId)"
    _PLAN_BUILD_ID = "$(body.message.data.id)"
    _PLAN_LOG_URL  = "$(body.message.data.logUrl)"
    _COMMIT        = "$(body.message.data.substitutions._COMMIT)"
  })

  pubsub_config {
    topic = var.build_events_topic
  }

  source_to_build {
    uri       = local.repo_uri
    ref       = "refs/heads/${var.default_branch}"
    repo_type = "GITHUB"
  }

  git_file_source {
    path      = "infra/pipeline/apply.yaml"
    uri       = local.repo_uri
    revision  = "refs/heads/${var.default_branch}"
    repo_type = "GITHUB"
  }

  # The approver sees _PLAN_BUILD_ID and _PLAN_LOG_URL: the plan build's log
  # shows the saved plan that this build applies unchanged.
  approval_config {
    approval_required = true
  }
}
