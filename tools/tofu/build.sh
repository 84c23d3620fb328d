#!/usr/bin/env bash
# build.sh builds the OpenTofu CLI pinned in tools/tofu/build/go.mod from the
# Go module proxy and caches it. It prints the binary's path on stdout.
#
#   tools/tofu/build.sh            # build if not cached, print the path
#   INFRA_TOFU_CACHE=/dir build.sh # cache root (default: ${XDG_CACHE_HOME:-~/.cache}/platform-tofu)
#
# The binary lands in <cache root>/<version>/tofu; a build goes to a temporary
# name first and is renamed into place, so an interrupted build never leaves a
# truncated binary behind. Building takes several minutes on two cores.
set -euo pipefail
mod_dir="$(cd "$(dirname "$0")/build" && pwd)"
cd "$mod_dir"
export GOWORK=off
version="$(go list -m -f '{{.Version}}' github.com/opentofu/opentofu)"
root="${INFRA_TOFU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/platform-tofu}"
bin="$root/$version/tofu"
if [ ! -x "$bin" ]; then
  mkdir -p "$root/$version"
  tmp="$(mktemp "$root/$version/tofu.XXXXXX")"
  trap 'rm -f "$tmp"' EXIT
  echo "tofu: building OpenTofu $version into $bin (several minutes)" >&2
  go build -trimpath -o "$tmp" github.com/opentofu/opentofu/cmd/tofu
  mv -f "$tmp" "$bin"
  trap - EXIT
fi
echo "$bin"
