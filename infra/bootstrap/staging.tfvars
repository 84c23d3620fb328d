# staging deploys release tags vX.Y.Z whose commit passed dev.
project_id          = "example-staging"
region              = "europe-west1"
env                 = "staging"
github              = { owner = "example-org", name = "platform" }
ref                 = { tag = "^v[0-9]+\\.[0-9]+\\.[0-9]+$" }
previous_promotions = "example-dev-function-sources"

# prod's ci account checks that a commit passed staging.
promotion_readers = { prod = "serviceAccount:ci-runner@example-prod.iam.gserviceaccount.com" }
