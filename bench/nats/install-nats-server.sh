#!/usr/bin/env bash
# Installs nats-server from the Go module proxy into bench/nats/bin (or
# $GOBIN), for `rafka-bench compare nats`. Needs only the Go toolchain.
set -euo pipefail
cd "$(dirname "$0")"
VERSION="${NATS_SERVER_VERSION:-v2.15.2}"
export GOBIN="${GOBIN:-$PWD/bin}"
if [ -x "$GOBIN/nats-server" ] && "$GOBIN/nats-server" --version 2>/dev/null | grep -q "${VERSION#v}"; then
  echo "nats-server ${VERSION} already in $GOBIN"
  exit 0
fi
GOFLAGS=-buildvcs=false go install "github.com/nats-io/nats-server/v2@${VERSION}"
"$GOBIN/nats-server" --version
