#!/usr/bin/env bash
# Smoke test of the compose cluster: build the image, start rafka-1..3 with
# docker-compose.yml (certificates from certs.sh), wait until the three are
# healthy and `rafka cluster info` lists them alive, create a topic with
# three replicas, produce to it with acks=all at a steady pace from the
# host, `docker kill` the broker leading partition 0 a third of the way in,
# start it again once partition 0 has a new leader that acknowledges
# records, then read everything back and check that
# every acknowledged record is in the log with its content. Prints the
# figures (records acknowledged, time to the first acknowledgement on the
# killed leader's partition). Everything it creates (containers, network,
# volumes, image tag, certificates) is removed on exit, failure included.
#
#   deploy/compose/smoke.sh
#
# Needs a Docker Engine, docker-compose and Go; pulls nothing. RECORDS
# (default 3000) and RATE (records per second, default 150) shape the load.
set -euo pipefail
cd "$(dirname "$0")/../.."

start=$(date +%s)
project="rafka-compose-smoke-$$"
image="rafka-compose-smoke:$$"
compose_file="deploy/compose/docker-compose.yml"
tmp=$(mktemp -d)
records="${RECORDS:-3000}"
rate="${RATE:-150}"
image_built=false
compose_up=false
producer=""   # pid of the background producer while it runs

log() { printf 'compose-smoke: [%3ds] %s\n' "$(($(date +%s) - start))" "$*" >&2; }

dc() { docker-compose -p "$project" -f "$compose_file" "$@"; }

cleanup() {
  local rc=$?
  if [ -n "$producer" ] && kill -0 "$producer" 2>/dev/null; then
    kill "$producer" 2>/dev/null || true
    wait "$producer" 2>/dev/null || true
  fi
  if $compose_up; then
    if [ $rc -ne 0 ]; then
      log "failed; broker logs:"
      dc logs --no-color --tail 30 2>&1 | sed 's/^/  | /' >&2 || true
    fi
    # Containers, the network and the named volumes.
    dc down -v --remove-orphans -t 5 >/dev/null 2>&1 || log "could not remove the compose project $project"
  fi
  if $image_built; then
    docker image rm "$image" >/dev/null 2>&1 || log "could not remove image $image"
  fi
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { log "FAIL: $*"; exit 1; }

# freePorts prints $1 distinct ports free on 127.0.0.1 for protocol $2
# (udp or tcp; by ss, when available).
freePorts() {
  local want=$1 proto=$2 p i got=()
  for ((i = 0; i < 200 && ${#got[@]} < want; i++)); do
    p=$((20000 + RANDOM % 30000))
    [[ " ${got[*]} " == *" $p "* ]] && continue
    if ! command -v ss >/dev/null || ! ss -Hln --"$proto" "sport = :$p" | grep -q .; then
      got+=("$p")
    fi
  done
  [ ${#got[@]} -eq "$want" ] || fail "no free $proto ports found"
  echo "${got[@]}"
}

# waitHealthy waits up to $1 seconds until every broker's health check
# passes, failing early when a container stops.
waitHealthy() {
  local limit=$1 i b status running ok
  for ((i = 0; i < limit * 2; i++)); do
    ok=0
    for b in rafka-1 rafka-2 rafka-3; do
      read -r running status <<<"$(docker inspect -f '{{.State.Running}} {{.State.Health.Status}}' "${cid[$b]}")"
      [ "$running" = true ] || fail "$b stopped (health $status)"
      [ "$status" = healthy ] && ok=$((ok + 1))
    done
    [ $ok -eq 3 ] && return 0
    sleep 0.5
  done
  fail "not all brokers healthy within ${limit}s"
}

lines() { wc -l <"$1" | tr -d ' '; }

log "building the image"
image_built=true
deploy/docker/build.sh "$image" >/dev/null

log "building the rafka CLI and the smoke client"
CGO_ENABLED=0 go build -o "$tmp/rafka" ./cmd/rafka
CGO_ENABLED=0 go build -o "$tmp/smokeclient" ./deploy/compose/smokeclient
RAFKA="$tmp/rafka" deploy/compose/certs.sh "$tmp/certs" >/dev/null

read -r p1 p2 p3 <<<"$(freePorts 3 udp)"
read -r a1 a2 a3 <<<"$(freePorts 3 tcp)"
export RAFKA_IMAGE="$image" RAFKA_CERTS="$tmp/certs" \
  RAFKA_1_PORT="$p1" RAFKA_2_PORT="$p2" RAFKA_3_PORT="$p3" \
  RAFKA_1_ADMIN="$a1" RAFKA_2_ADMIN="$a2" RAFKA_3_ADMIN="$a3"
brokers="127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$p3"
conn=(--brokers "$brokers" --tls-ca "$tmp/certs/ca/ca.pem" --timeout 20s)

log "starting rafka-1..3 (udp $p1 $p2 $p3, admin $a1 $a2 $a3)"
compose_up=true
dc up -d >/dev/null 2>&1 || { dc up -d; fail "docker-compose up failed"; }
# Container ids, by service: they stay the same across docker kill and start.
declare -A cid
for b in rafka-1 rafka-2 rafka-3; do
  cid[$b]=$(dc ps -q "$b")
  [ -n "${cid[$b]}" ] || fail "no container for $b"
done
waitHealthy 90

for ((i = 0; i < 60; i++)); do
  alive=$("$tmp/rafka" cluster info --json "${conn[@]}" 2>/dev/null | grep -o '"state": *"alive"' | wc -l || true)
  [ "$alive" -eq 3 ] && break
  sleep 0.5
done
[ "$alive" -eq 3 ] || fail "rafka cluster info lists $alive alive brokers, want 3"
log "rafka cluster info: 3 brokers alive"

"$tmp/rafka" topic create smoke --partitions 3 --replication-factor 3 "${conn[@]}" >/dev/null
for ((i = 0; i < 60; i++)); do
  victim=$("$tmp/smokeclient" leader --topic smoke --partition 0 --brokers "$brokers" --tls-ca "$tmp/certs/ca/ca.pem" --timeout 10s 2>/dev/null || true)
  [ -n "$victim" ] && break
  sleep 0.5
done
[ -n "$victim" ] || fail "partition 0 of the topic has no leader"

log "producing $records records at $rate/s with acks=all"
acked="$tmp/acked"
: >"$acked"
"$tmp/smokeclient" produce --topic smoke --records "$records" --rate "$rate" --acked "$acked" \
  --brokers "$brokers" --tls-ca "$tmp/certs/ca/ca.pem" --timeout 180s >"$tmp/produced" 2>"$tmp/produce.err" &
producer=$!

# waitAcked waits until $1 records are acknowledged or the producer ends.
waitAcked() {
  local i
  for ((i = 0; i < 1200; i++)); do
    [ "$(lines "$acked")" -ge "$1" ] && return 0
    kill -0 "$producer" 2>/dev/null || return 0
    sleep 0.1
  done
  fail "fewer than $1 records acknowledged in 120s"
}

waitAcked $((records / 3))
log "$(lines "$acked") records acknowledged"
# The leader may have moved since the topic was created.
victim=$("$tmp/smokeclient" leader --topic smoke --partition 0 --brokers "$brokers" --tls-ca "$tmp/certs/ca/ca.pem" --timeout 10s)
victim_id="${cid[$victim]:-}"
[ -n "$victim_id" ] || fail "partition 0's leader $victim is not a broker of the compose project"
before=$(lines "$acked")
docker kill "$victim_id" >/dev/null
kill_ms=$(date +%s%3N)
log "killed $victim, leader of partition 0, after $before acknowledgements"

# firstAfterKill prints when the first record of partition 0 was
# acknowledged after the kill (unix ms), or nothing.
firstAfterKill() {
  awk -v k="$kill_ms" '$2 == 0 && $4 >= k { if (m == "" || $4 < m) m = $4 } END { print m }' "$acked"
}
# The cluster carries on without it: partition 0 has a new leader.
for ((i = 0; i < 600; i++)); do
  [ -n "$(firstAfterKill)" ] && break
  kill -0 "$producer" 2>/dev/null || break
  sleep 0.1
done
[ -n "$(firstAfterKill)" ] || fail "no record of partition 0 acknowledged within 60s of killing its leader"
log "partition 0 acknowledges again, $(($(firstAfterKill) - kill_ms)) ms after the kill; starting $victim again"
docker start "$victim_id" >/dev/null
wait "$producer" || { rc=$?; producer=""; cat "$tmp/produce.err" >&2; fail "the producer failed (exit $rc)"; }
producer=""
cat "$tmp/produce.err" >&2
waitHealthy 90

log "reading back"
"$tmp/smokeclient" verify --topic smoke --acked "$acked" \
  --brokers "$brokers" --tls-ca "$tmp/certs/ca/ca.pem" --timeout 60s >"$tmp/verified" || fail "verification failed"

# Figures. The acked file has one line per acknowledged record:
# SEQ PARTITION OFFSET ACK_UNIX_MS.
first_after=$(firstAfterKill)
log "produced: $(cat "$tmp/produced")"
log "verified: $(cat "$tmp/verified")"
log "time to the first acknowledgement on partition 0 after killing its leader: $((first_after - kill_ms)) ms"
log "ok: $(lines "$acked") records acknowledged and read back, $(($(date +%s) - start))s"
