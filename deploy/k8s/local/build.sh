#!/usr/bin/env bash
# Builds the Kubernetes binaries the local test cluster runs, from the Go
# module proxy, into a cache directory keyed by version, and prints that
# directory on stdout. A second run finds them there and builds nothing.
#
#   deploy/k8s/local/build.sh
#
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy and kubectl come from k8s.io/kubernetes at K8S_VERSION, built
# in one go from a wrapper module: k8s.io/kubernetes replaces its staging
# modules (k8s.io/api, k8s.io/client-go, ...) with directories of its own
# tree, which a module that requires it cannot see, so the wrapper replaces
# each of them with its published v0.x release. CoreDNS comes from
# github.com/coredns/coredns at COREDNS_VERSION. Static (CGO off) and
# -trimpath. The cold build takes minutes of every core, so it runs niced.
#
# RAFKA_K8S_CACHE is the cache root (default /var/cache/rafka-k8s).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"
cache="${RAFKA_K8S_CACHE:-/var/cache/rafka-k8s}/$K8S_VERSION"
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

log() { printf 'build: %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is not installed"; exit 1; }
mkdir -p "$cache"

have_all() {
  local b
  for b in "${bins[@]}" coredns; do
    [ -x "$cache/$b" ] || return 1
  done
}
if have_all; then
  echo "$cache"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off

missing=0
for b in "${bins[@]}"; do [ -x "$cache/$b" ] || missing=1; done
if [ $missing = 1 ]; then
  start=$(date +%s)
  log "building Kubernetes $K8S_VERSION (several minutes when cold)"
  # The staging modules k8s.io/kubernetes replaces, from its own go.mod.
  gomod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -r "$gomod" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod")
  [ -n "$staging" ] || { log "no staging replaces in $gomod"; exit 1; }
  minor="${K8S_VERSION#v1.}"   # 34.4 -> the staging modules are v0.34.4
  {
    echo "module rafka.local/k8sbuild"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m v0.$minor"; done
    echo ")"
  } >"$work/go.mod"
  v="$K8S_VERSION" maj=1 min="${minor%%.*}"
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=$maj -X $p.gitMinor=$min"
    ld="$ld -X $p.gitTreeState=clean -X $p.gitCommit=unknown -X $p.buildDate=$now"
  done
  pkgs=()
  for b in "${bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  (cd "$work" && nice -n 10 go build -trimpath -ldflags "$ld" -o "$work/out/" "${pkgs[@]}")
  for b in "${bins[@]}"; do mv "$work/out/$b" "$cache/$b"; done
  log "Kubernetes built in $(($(date +%s) - start)) s"
fi

if [ ! -x "$cache/coredns" ]; then
  start=$(date +%s)
  log "building CoreDNS $COREDNS_VERSION"
  (cd "$work" && GOBIN="$work/out" nice -n 10 go install -trimpath -ldflags "-s -w" \
    "github.com/coredns/coredns@$COREDNS_VERSION")
  mv "$work/out/coredns" "$cache/coredns"
  log "CoreDNS built in $(($(date +%s) - start)) s"
fi
echo "$cache"
