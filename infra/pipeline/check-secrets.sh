#!/usr/bin/env bash
# check-secrets.sh: every secret a manifest exposes through secret_env must
# have an enabled version before the functions deploy (a function reading
# "latest" of an empty secret fails to start). Adding versions is the one
# manual step of a new environment; this turns a failed deploy into a clear
# instruction.
#
# Environment: PROJECT_ID; ROOT (repository root, default .).
set -euo pipefail
: "${PROJECT_ID:?PROJECT_ID is required}"
root="${ROOT:-.}"
# secret_env entries are "    secret: <id>" lines (docs/manifest.md).
mapfile -t secrets < <(sed -n 's/^[[:space:]]*secret:[[:space:]]*["'\'']\{0,1\}\([A-Za-z0-9_-]*\).*/\1/p' "${root}"/functions/*/function.yaml | sort -u)
missing=()
for s in "${secrets[@]}"; do
  [ -n "${s}" ] || continue
  v="$(gcloud secrets versions list "${s}" --project="${PROJECT_ID}" --filter='state=ENABLED' --limit=1 --format='value(name)' 2>/dev/null || true)"
  if [ -z "${v}" ]; then
    missing+=("${s}")
  else
    echo "secret ${s}: has an enabled version"
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "These secrets have no enabled version in ${PROJECT_ID}; add one before deploying (docs/infrastructure.md, \"Bootstrap\"):" >&2
  for s in "${missing[@]}"; do
    echo "  printf '%s' \"\$VALUE\" | gcloud secrets versions add ${s} --project=${PROJECT_ID} --data-file=-" >&2
  done
  exit 1
fi
