#!/usr/bin/env bash
# serialize.sh: builds that plan or apply one environment run one at a time.
# Waits while an older deploy or apply build of the environment is still
# queued, pending approval or running; the Terraform state lock and the
# stale-plan check back this up.
#
# Environment: ENV, BUILD_ID, PROJECT_ID; SERIALIZE_INTERVAL (seconds
# between checks, default 20), SERIALIZE_TIMEOUT (seconds, default 3000).
set -euo pipefail
: "${ENV:?ENV is required}"
: "${BUILD_ID:?BUILD_ID is required}"
: "${PROJECT_ID:?PROJECT_ID is required}"
interval="${SERIALIZE_INTERVAL:-20}"
timeout="${SERIALIZE_TIMEOUT:-3000}"
created="$(gcloud builds describe "${BUILD_ID}" --project="${PROJECT_ID}" --format='value(createTime)')"
waited=0
while :; do
  older="$(gcloud builds list --project="${PROJECT_ID}" --ongoing \
    --filter="(tags=${ENV}-deploy OR tags=${ENV}-apply) AND createTime<\"${created}\" AND id!=${BUILD_ID}" \
    --format='value(id)')"
  if [ -z "${older}" ]; then
    echo "serialize: no older ${ENV} deploy or apply build is running"
    exit 0
  fi
  if [ "${waited}" -ge "${timeout}" ]; then
    echo "serialize: still waiting after ${timeout}s for: ${older}" >&2
    exit 1
  fi
  echo "serialize: waiting for older builds: ${older}"
  sleep "${interval}"
  waited=$((waited + interval))
done
