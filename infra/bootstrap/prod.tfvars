# prod deploys tags prod-vX.Y.Z whose commit passed staging: plan, approval
# of that plan, apply of exactly that plan.
project_id          = "example-prod"
region              = "europe-west1"
env                 = "prod"
github              = { owner = "example-org", name = "platform" }
ref                 = { tag = "^prod-v[0-9]+\\.[0-9]+\\.[0-9]+$" }
previous_promotions = "example-staging-function-sources"
require_approval    = true
