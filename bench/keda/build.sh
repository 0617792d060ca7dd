#!/usr/bin/env bash
# Builds KEDA itself (operator, metrics adapter, admission webhook) for the side-by-side benchmarks,
# from the Go module pinned in bench/keda/<VERSION>/go.mod, and copies KEDA's CRDs
# (config/crd/bases/*.yaml of the module) next to the binaries. Not part of the test command.
#
#   bench/keda/build.sh VERSION        # e.g. 2.16.0 or v2.21.1
#
# Output: ${EBB_KEDA_CACHE:-/var/tmp/ebb-keda}/<VERSION>/{bin/{keda,keda-adapter,keda-admission-webhooks},crds/}
# A second run does nothing when the binaries are present and were built from the same go.mod/go.sum
# (their sha256 is kept in go.mod.sha256 beside bin/). Needs Go 1.21 or later and the Go module
# proxy; when the pinned KEDA asks for a newer Go than the local one, the go command fetches that
# toolchain from the proxy itself (GOTOOLCHAIN=auto). Builds one package at a time (GOFLAGS=-p=1)
# unless EBB_KEDA_GOFLAGS says otherwise: the machines this runs on are small and shared.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ $# -ne 1 ]; then
  echo "usage: $0 VERSION (one of: $(cd bench/keda && ls -d v*/ | tr -d / | tr '\n' ' '))" >&2
  exit 2
fi
version="${1#v}"
mod="bench/keda/v$version"
if [ ! -f "$mod/go.mod" ] || [ ! -f "$mod/go.sum" ]; then
  echo "build.sh: no pinned module for KEDA $version ($mod/go.mod and go.sum); pinned: $(cd bench/keda && ls -d v*/ | tr -d / | tr '\n' ' ')" >&2
  exit 1
fi

if ! command -v go >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends golang-go
fi
if ! go version | awk '{ split(substr($3, 3), v, "."); exit !(v[1] > 1 || v[2] >= 21) }'; then
  echo "build.sh: $(go version) is too old; Go 1.21 or later is needed" >&2
  exit 1
fi

root="${EBB_KEDA_CACHE:-/var/tmp/ebb-keda}/$version"
bin="$root/bin"
crds="$root/crds"
programs=(keda keda-adapter keda-admission-webhooks)
hash="$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -d' ' -f1)"

present=1
for p in "${programs[@]}"; do [ -x "$bin/$p" ] || present=0; done
ls "$crds"/*.yaml >/dev/null 2>&1 || present=0
[ "$(cat "$root/go.mod.sha256" 2>/dev/null)" = "$hash" ] || present=0
if [ "$present" = 1 ]; then
  echo "keda $version: present in $bin"
  exit 0
fi

echo "keda $version: building into $bin (first run only)"
started=$(date +%s)
mkdir -p "$root"
tmp="$(mktemp -d "$root/build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

pkg=github.com/kedacore/keda/v2
ldflags="-s -w -X=$pkg/version.Version=$version -X=$pkg/version.GitCommit=v$version"
(
  cd "$mod"
  export CGO_ENABLED=0 GOTOOLCHAIN=auto GOFLAGS="${EBB_KEDA_GOFLAGS:--p=1} -mod=readonly -buildvcs=false"
  go build -trimpath -ldflags "$ldflags" -o "$tmp/keda" "$pkg/cmd/operator"
  go build -trimpath -ldflags "$ldflags" -o "$tmp/keda-adapter" "$pkg/cmd/adapter"
  go build -trimpath -ldflags "$ldflags" -o "$tmp/keda-admission-webhooks" "$pkg/cmd/webhooks"
  # The CRDs of exactly the version built, from the module cache.
  src="$(go list -m -f '{{.Dir}}' "$pkg")"
  mkdir -p "$tmp/crds"
  cp "$src"/config/crd/bases/*.yaml "$tmp/crds/"
)
mkdir -p "$bin"
for p in "${programs[@]}"; do mv -f "$tmp/$p" "$bin/$p"; done
rm -rf "$crds"
mv "$tmp/crds" "$crds"
chmod -R u+w "$crds"
echo "$hash" > "$root/go.mod.sha256"
ls -l "$bin" "$crds"
echo "keda $version: built in $(( $(date +%s) - started )) s"
