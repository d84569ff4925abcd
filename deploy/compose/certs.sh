#!/usr/bin/env bash
# Creates the TLS files of the compose cluster with `rafka certs`: a cluster
# CA in DIR/ca (ca.pem, ca-key.pem) and, for each broker rafka-1..3, a
# directory DIR/rafka-N holding its certificate, its key and a copy of the
# CA certificate, which docker-compose.yml mounts read-only at /certs.
#
#   deploy/compose/certs.sh [DIR]     # default deploy/compose/certs
#
# Each broker certificate names the broker's service (rafka-N), which the
# other brokers dial, and 127.0.0.1 and localhost, which clients on the
# host dial. Existing files are kept: run it again after removing DIR to
# start over. RAFKA selects the rafka binary (default: `rafka` on PATH, else
# one built from this checkout).
#
# The broker runs as uid 65532 in the container and must read its key: as
# root the broker directories are given to that uid (keys stay 0600);
# otherwise the keys are made readable by every user of this machine, which
# is acceptable for a local test cluster only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-$here/certs}"

rafka="${RAFKA:-}"
if [ -z "$rafka" ]; then
  if command -v rafka >/dev/null; then
    rafka=rafka
  else
    rafka="$(mktemp -d)/rafka"
    (cd "$here/../.." && CGO_ENABLED=0 go build -o "$rafka" ./cmd/rafka)
  fi
fi

mkdir -p "$dir"
if [ ! -f "$dir/ca/ca.pem" ]; then
  "$rafka" certs create-ca --out "$dir/ca" >/dev/null
fi
for b in rafka-1 rafka-2 rafka-3; do
  if [ ! -f "$dir/$b/cert.pem" ]; then
    "$rafka" certs create-broker --ca-dir "$dir/ca" --out "$dir/$b" \
      --host "$b" --host 127.0.0.1 --host localhost >/dev/null
  fi
  cp "$dir/ca/ca.pem" "$dir/$b/ca.pem"
  if [ "$(id -u)" = 0 ]; then
    chown -R 65532:65532 "$dir/$b"
  else
    chmod 0755 "$dir/$b"
    chmod 0644 "$dir/$b/key.pem"
  fi
done
echo "$dir"
