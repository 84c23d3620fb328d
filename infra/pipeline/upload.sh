#!/usr/bin/env bash
# upload.sh: uploads every dist/<function>.zip as <function>-<sha256>.zip
# (skipped when that object exists: content-addressed, so only changed
# functions redeploy), writes sources.auto.tfvars.json with the object names
# and stores it as gs://<bucket>/builds/<commit>/sources.auto.tfvars.json for
# the deploy build of the same commit.
#
# Environment: SOURCE_BUCKET, COMMIT_SHA; DIST (default dist), OUT (default
# sources.auto.tfvars.json).
set -euo pipefail
: "${SOURCE_BUCKET:?SOURCE_BUCKET is required}"
: "${COMMIT_SHA:?COMMIT_SHA is required}"
dist="${DIST:-dist}"
out="${OUT:-sources.auto.tfvars.json}"
shopt -s nullglob
zips=("${dist}"/*.zip)
if [ ${#zips[@]} -eq 0 ]; then
  echo "upload: no archives in ${dist}" >&2
  exit 1
fi
entries=()
for zip in "${zips[@]}"; do
  fn="$(basename "${zip}" .zip)"
  sum="$(sha256sum "${zip}" | cut -d' ' -f1)"
  object="${fn}-${sum}.zip"
  if gcloud storage objects describe "gs://${SOURCE_BUCKET}/${object}" >/dev/null 2>&1; then
    echo "unchanged: ${object}"
  else
    gcloud storage cp --no-clobber "${zip}" "gs://${SOURCE_BUCKET}/${object}"
  fi
  entries+=("\"${fn}\": \"${object}\"")
done
(IFS=,; printf '{"function_sources": {%s}}\n' "${entries[*]}") > "${out}"
gcloud storage cp "${out}" "gs://${SOURCE_BUCKET}/builds/${COMMIT_SHA}/sources.auto.tfvars.json"
cat "${out}"
