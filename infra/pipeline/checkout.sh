#!/usr/bin/env bash
# checkout.sh: the deploy and apply builds start from the default branch
# (their trigger is Pub/Sub, not a push); this checks out exactly the commit
# the ci build tested and packaged, and fails if it cannot.
#
# Environment: COMMIT (the ci build's COMMIT_SHA).
set -euo pipefail
: "${COMMIT:?COMMIT is required}"
if ! [[ "${COMMIT}" =~ ^[0-9a-f]{40}$ ]]; then
  echo "checkout: COMMIT '${COMMIT}' is not a commit sha" >&2
  exit 1
fi
git fetch --quiet origin "${COMMIT}"
git checkout --quiet --detach "${COMMIT}"
head="$(git rev-parse HEAD)"
if [ "${head}" != "${COMMIT}" ]; then
  echo "checkout: HEAD is ${head}, want ${COMMIT}" >&2
  exit 1
fi
echo "checkout: at ${COMMIT}"
