#!/usr/bin/env bash
# Builds the broker image: a static rafka binary compiled here, copied into
# an image built FROM scratch (deploy/docker/Dockerfile).
#
#   deploy/docker/build.sh [TAG]      # default rafka:dev
#
# VERSION and COMMIT override what is stamped into the binary (see
# cmd/internal/buildinfo); by default `git describe` and `git rev-parse`.
# GOARCH selects the architecture (default: the host's). Prints the image
# ID on the last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."

tag="${1:-rafka:dev}"
version="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
commit="${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
pkg=github.com/rafka/rafka/cmd/internal/buildinfo

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X $pkg.Version=$version -X $pkg.Commit=$commit" \
  -o "$ctx/rafka" ./cmd/rafka
# The data directory the image's /data (and every fresh volume) starts as.
mkdir -m 0750 "$ctx/data"
cp deploy/docker/Dockerfile "$ctx/Dockerfile"

DOCKER_BUILDKIT=0 docker build -q \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$commit" \
  -t "$tag" "$ctx" >&2
docker image inspect -f '{{.Id}}' "$tag"
