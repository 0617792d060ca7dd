#!/usr/bin/env bash
# Builds the upstream Kubernetes control plane the real-cluster tests run on: etcd, kube-apiserver,
# kube-controller-manager and kubectl, from the Go module pinned in testbackends/kubernetes/go.mod.
# The binaries go to a cache outside the checkout keyed by the pinned versions
# ($EBB_KUBE_CACHE, default /var/tmp/ebb-kube/<kubernetes>-<etcd>/bin); a second run with the
# binaries present does nothing. Needs Go (>= the go line of that go.mod) and the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/../.."
mod=testbackends/kubernetes

if ! command -v go >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends golang-go
fi
# Go 1.21 and later fetch the toolchain the go.mod asks for from the module proxy by themselves.
if ! go version | awk '{ split(substr($3, 3), v, "."); exit !(v[1] > 1 || v[2] >= 21) }'; then
  echo "kubernetes.sh: $(go version) is too old; Go 1.21 or later is needed" >&2
  exit 1
fi

kube_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2 } $1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' "$mod/go.mod")"
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ { print $2 }' "$mod/go.mod")"
if [ -z "$kube_version" ] || [ -z "$etcd_version" ]; then
  echo "kubernetes.sh: cannot read the pinned versions from $mod/go.mod" >&2
  exit 1
fi
root="${EBB_KUBE_CACHE:-/var/tmp/ebb-kube}/${kube_version}-etcd-${etcd_version}"
bin="$root/bin"
tools=(etcd kube-apiserver kube-controller-manager kubectl)

present=1
for t in "${tools[@]}"; do [ -x "$bin/$t" ] || present=0; done
if [ "$present" = 1 ]; then
  echo "kubernetes $kube_version, etcd $etcd_version: present in $bin"
  exit 0
fi

echo "kubernetes $kube_version, etcd $etcd_version: building into $bin (first run only)"
started=$(date +%s)
mkdir -p "$root"
tmp="$(mktemp -d "$root/build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

minor="${kube_version#v1.}"
minor="${minor%%.*}"
stamp="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# What `kubectl version` and /version report: the release, not v0.0.0-master.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$stamp"
done

(
  cd "$mod"
  export CGO_ENABLED=0
  go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
  go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
)
mkdir -p "$bin"
for t in "${tools[@]}"; do mv -f "$tmp/$t" "$bin/$t"; done
"$bin/kube-apiserver" --version
"$bin/etcd" --version | head -n 1
echo "built in $(( $(date +%s) - started )) s"
