#!/usr/bin/env bash
# record-promotion.sh: after a successful apply, records that the commit
# passed this environment as gs://<source bucket>/promotions/<commit>; the
# next environment's promotion gate requires it.
#
# Environment: SOURCE_BUCKET, COMMIT, BUILD_ID, ENV.
set -euo pipefail
: "${SOURCE_BUCKET:?SOURCE_BUCKET is required}"
: "${COMMIT:?COMMIT is required}"
: "${BUILD_ID:?BUILD_ID is required}"
: "${ENV:?ENV is required}"
printf '{"env": "%s", "commit": "%s", "build": "%s"}\n' "${ENV}" "${COMMIT}" "${BUILD_ID}" |
  gcloud storage cp - "gs://${SOURCE_BUCKET}/promotions/${COMMIT}"
echo "promotion: ${COMMIT} passed ${ENV}"
