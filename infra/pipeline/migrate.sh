#!/usr/bin/env bash
# migrate.sh: runs the schema migrations before functions deploy: sets the
# migration job's image to this release's migrate image and executes the
# job, waiting for it. The job runs as the migrator, the schema's owner.
#
# Usage: migrate.sh before|after
#   before: run if the job exists; on a first deploy it does not yet, and a
#           marker (.migrate-after) makes the "after" call run it instead.
#   after:  run only if "before" could not.
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
    if [ ! -f "${marker}" ]; then
      echo "migrate: already ran before the apply"
      exit 0
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
