#!/usr/bin/env bash
# Smoke test of the broker image: build it, run it on a network of its own
# with a named data volume and the client port published on 127.0.0.1 only,
# wait for its health check, create a topic, produce and consume through
# the published port with a rafka built here, restart the container and
# check the records survived. Everything it creates (container, volume,
# network, image tag) is removed on exit, failure included.
#
#   deploy/docker/smoke.sh
#
# Needs a Docker Engine and Go; pulls nothing. PORT picks the host UDP port
# (default: a free one).
set -euo pipefail
cd "$(dirname "$0")/../.."

start=$(date +%s)
name="rafka-smoke-$$"
image="rafka-smoke:$$"
tmp=$(mktemp -d)
created=()   # "kind name" of what to remove, in creation order

log() { printf 'smoke: %s\n' "$*" >&2; }

cleanup() {
  local rc=$? i kind obj
  if [ $rc -ne 0 ] && docker container inspect "$name" >/dev/null 2>&1; then
    log "failed; container logs:"
    docker logs --tail 50 "$name" 2>&1 | sed 's/^/  | /' >&2 || true
  fi
  for ((i = ${#created[@]} - 1; i >= 0; i--)); do
    read -r kind obj <<<"${created[i]}"
    case "$kind" in
      container) docker rm -f -v "$obj" >/dev/null 2>&1 || log "could not remove container $obj" ;;
      volume)    docker volume rm "$obj" >/dev/null 2>&1 || log "could not remove volume $obj" ;;
      network)   docker network rm "$obj" >/dev/null 2>&1 || log "could not remove network $obj" ;;
      image)     docker image rm "$obj" >/dev/null 2>&1 || log "could not remove image $obj" ;;
    esac
  done
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { log "FAIL: $*"; exit 1; }

# waitHealthy waits up to $1 seconds for the container's health check to
# pass, failing early if the container stops or turns unhealthy.
waitHealthy() {
  local limit=$1 i status running
  for ((i = 0; i < limit * 2; i++)); do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$name")
    running=$(docker inspect -f '{{.State.Running}}' "$name")
    [ "$running" = true ] || fail "container stopped (health $status)"
    case "$status" in
      healthy) return 0 ;;
      unhealthy) fail "container unhealthy: $(docker inspect -f '{{range .State.Health.Log}}{{.Output}}{{end}}' "$name" | tail -1)" ;;
    esac
    sleep 0.5
  done
  fail "not healthy within ${limit}s (health $status)"
}

# freePort prints a UDP port free on 127.0.0.1 (by ss, when available).
freePort() {
  local p i
  for ((i = 0; i < 50; i++)); do
    p=$((20000 + RANDOM % 30000))
    if ! command -v ss >/dev/null || ! ss -Hlun "sport = :$p" | grep -q .; then
      echo "$p"; return
    fi
  done
  fail "no free UDP port found"
}

log "building the image"
created+=("image $image")
deploy/docker/build.sh "$image" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$image")
user=$(docker image inspect -f '{{.Config.User}}' "$image")
[ "$user" = "65532:65532" ] || fail "image user is '$user', want 65532:65532"

log "building the rafka client"
CGO_ENABLED=0 go build -o "$tmp/rafka" ./cmd/rafka
rafka="$tmp/rafka"

port="${PORT:-$(freePort)}"
addr="127.0.0.1:$port"
created+=("network $name")
docker network create "$name" >/dev/null
created+=("volume $name")
docker volume create "$name" >/dev/null

log "starting the broker on $addr (udp)"
created+=("container $name")
docker run -d --name "$name" --network "$name" \
  -v "$name:/data" \
  -p "$addr:9092/udp" \
  -e "RAFKA_ADVERTISED_ADDR=$addr" \
  "$image" >/dev/null
waitHealthy 60

# The broker generated its development certificate in the volume on first
# start; the client needs only its public half.
docker cp "$name:/data/tls/cert.pem" "$tmp/ca.pem"
conn=(--brokers "$addr" --tls-ca "$tmp/ca.pem" --timeout 20s)

log "creating a topic, producing and consuming"
"$rafka" topic create smoke --partitions 3 "${conn[@]}" >/dev/null
seq 1 1000 | sed 's/^/record-/' >"$tmp/want"
timeout 60 "$rafka" produce smoke "${conn[@]}" <"$tmp/want" 2>/dev/null || fail "produce failed"

check() { # $1: when
  timeout 60 "$rafka" consume smoke --from-beginning "${conn[@]}" 2>/dev/null | sort -V >"$tmp/got" \
    || fail "consume $1 failed"
  cmp -s "$tmp/want" "$tmp/got" || fail "records $1: want $(wc -l <"$tmp/want"), got $(wc -l <"$tmp/got") (first difference: $(diff "$tmp/want" "$tmp/got" | sed -n 2p))"
  log "consumed all $(wc -l <"$tmp/got") records $1"
}
check "after producing"

log "restarting the container"
docker restart -t 30 "$name" >/dev/null
waitHealthy 60
check "after a restart"

log "ok: image $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }'), user $user, $(($(date +%s) - start))s"
