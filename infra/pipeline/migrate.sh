#!/usr/bin/env bash
# migrate.sh: runs the schema migrations before functions deploy: sets the
# migration job's image to this release's migrate image and executes the
# job, waiting for it. The job runs as the migrator, the schema's owner.
#
# Usage: migrate.sh before|after
#   before: run if the job exists (the schema is ready before new code
#           runs); on a first deploy it does not yet.
#   after:  run again once the apply has set the job's function users
#           (MIGRATE_FUNCTION_USERS), so a function added in this release
#           gets its grants now, not one deploy later. Migrations and grants
#           are idempotent: the second run changes only the grants.
# Environment: PROJECT_ID, REGION, JOB, IMAGE (the ci build's
# <region>-docker.pkg.dev/<project>/pipeline/migrate:<commit>).
set -euo pipefail
phase="${1:?usage: migrate.sh before|after}"
: "${PROJECT_ID:?PROJECT_ID is required}"
: "${REGION:?REGION is required}"
: "${JOB:?JOB is required}"
: "${IMAGE:?IMAGE is required}"
marker=".migrate-after"
case "${phase}" in
  before)
    if ! gcloud run jobs describe "${JOB}" --project="${PROJECT_ID}" --region="${REGION}" >/dev/null 2>&1; then
      echo "migrate: no job ${JOB} yet (first deploy): migrations run right after the apply creates it"
      touch "${marker}"
      exit 0
    fi
    ;;
  after)
    if [ -f "${marker}" ]; then
      echo "migrate: first run, now that the apply created the job"
    else
      echo "migrate: again after the apply, for the function users it set"
    fi
    ;;
  *)
    echo "migrate: unknown phase ${phase}" >&2
    exit 2
    ;;
esac
if ! gcloud artifacts docker images describe "${IMAGE}" >/dev/null 2>&1; then
  echo "migrate: WARNING: no image ${IMAGE} (the ci build found no migrate tool); migrations skipped" >&2
  exit 0
fi
gcloud run jobs update "${JOB}" --project="${PROJECT_ID}" --region="${REGION}" --image="${IMAGE}" --quiet
gcloud run jobs execute "${JOB}" --project="${PROJECT_ID}" --region="${REGION}" --wait
