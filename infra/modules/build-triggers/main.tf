# One trigger per function folder: a team's change builds and deploys only
# when it touches that function or the shared code, plus one trigger for
# changes to the infrastructure itself. Every build runs cloudbuild.yaml with
# _ENV and _FUNCTION; archives are content-addressed, so only functions whose
# archive changed are redeployed by the apply.

locals {
  common = {
    _ENV             = var.env
    _TF_STATE_BUCKET = var.state_bucket
    _SOURCE_BUCKET   = var.source_bucket
  }

  triggers = merge(
    {
      for name, f in var.functions : name => {
        function       = name
        team           = f.team
        included_files = ["functions/${name}/**", "shared/**"]
      }
    },
    {
      _infra = {
        function       = "all"
        team           = "platform"
        included_files = ["infra/**", "topics.yaml", "cloudbuild.yaml", "Makefile"]
      }
    },
  )
}

resource "google_cloudbuild_trigger" "default" {
  for_each = local.triggers

  project         = var.project_id
  location        = var.location
  name            = substr("${var.env}-${replace(each.key, "_", "-")}", 0, 64)
  filename        = var.filename
  included_files  = each.value.included_files
  service_account = var.service_account
  tags            = [var.env, "team-${each.value.team}", "function-${each.value.function}"]
  substitutions   = merge(local.common, { _FUNCTION = each.value.function })

  github {
    owner = var.github.owner
    name  = var.github.name
    push {
      branch = var.github.branch
    }
  }

  approval_config {
    approval_required = var.require_approval
  }
}
