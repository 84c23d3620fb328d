# dev deploys every merge to main.
project_id = "example-dev"
region     = "europe-west1"
env        = "dev"
github     = { owner = "example-org", name = "platform" }
ref        = { branch = "^main$" }

# staging's ci account checks that a commit passed dev.
promotion_readers = { staging = "serviceAccount:ci-runner@example-staging.iam.gserviceaccount.com" }
