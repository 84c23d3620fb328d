#!/usr/bin/env bash
# promotion-gate.sh: the ci build of staging and prod goes on only for a
# commit that passed the previous environment, whose deploy recorded it as
# gs://<previous environment's source bucket>/promotions/<commit>.
#
# Environment: PREVIOUS_PROMOTIONS (bucket; empty for dev), COMMIT_SHA.
set -euo pipefail
: "${COMMIT_SHA:?COMMIT_SHA is required}"
if [ -z "${PREVIOUS_PROMOTIONS:-}" ]; then
  echo "promotion gate: first environment, nothing to check"
  exit 0
fi
record="gs://${PREVIOUS_PROMOTIONS}/promotions/${COMMIT_SHA}"
if ! gcloud storage objects describe "${record}" >/dev/null 2>&1; then
  echo "promotion gate: commit ${COMMIT_SHA} has not passed the previous environment (no ${record})." >&2
  echo "Promote only a commit whose deploy to the previous environment succeeded (docs/infrastructure.md, \"Promotion\")." >&2
  exit 1
fi
echo "promotion gate: ${COMMIT_SHA} passed the previous environment (${record})"
