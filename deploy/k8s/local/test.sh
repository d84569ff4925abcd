#!/usr/bin/env bash
# End-to-end test of the broker's Kubernetes manifests on a real, throwaway
# single-node cluster (up.sh), removed again on exit whatever happens
# (down.sh, which also checks that nothing is left behind). Needs root, Go
# and a Docker Engine; reaches nothing outside this machine.
#
#   deploy/k8s/local/test.sh
#
# It applies deploy/k8s/local/overlay (the dev overlay, adjusted for one
# node: local volumes, the locally built image) and checks, step by step:
#   1. three broker pods Ready, and `rafka cluster info` lists three brokers;
#   2. a topic of 6 partitions with 3 replicas each;
#   3. a client producing with acks=all at a steady rate from a pod (the
#      load program), through the client Service, for the rest of the test;
#   4. deleting the broker that leads the most partitions: leadership moves
#      to the others, the pod comes back with its volume and rejoins; while
#      it starts, its /readyz keeps it out of the client Service;
#   5. a rolling update (a changed annotation) under that load, with the
#      PodDisruptionBudget refusing a second disruption meanwhile;
#   6. scaling out to 4 brokers (replicas move to the new one on their
#      own) and back in to 3 after `rafka cluster drain rafka-3 --wait`,
#      with every partition on three live brokers again;
#   7. every produce call succeeded (with retries) and every acknowledged
#      record reads back;
# then the teardown leaves no process, mount, iptables rule, route or
# interface. It prints the time the cluster took to come up, and for the
# deleted pod the time to Ready and to the first acknowledgement of each of
# the partitions.
#
# RAFKA_K8S_KEEP=1 leaves the cluster up after the test (tear it down with
# down.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
K8S_LOG_PREFIX=test
# shellcheck source=lib.sh
. "$here/lib.sh"

NS=rafka-dev
STS=rafka
TOPIC=e2e
PARTITIONS=6
RATE="${RAFKA_K8S_RATE:-100}"
LOAD_IMAGE=localhost/rafka-k8s-load:1
selector=app.kubernetes.io/name=rafka,app.kubernetes.io/component=broker

start=$(date +%s)
tmp=$(mktemp -d)
failed_step=""
declare -A figures=()

step() { printf '\n=== %s\n' "$*" >&2; failed_step="$*"; }
fail() { k8s_fail "$*"; }

diagnose() {
  k8s_log "state of the cluster at the failure:"
  k8s_kubectl get nodes,pods,pvc,pv -A -o wide 2>&1 | sed 's/^/  | /' >&2 || true
  k8s_kubectl -n "$NS" get events --sort-by .lastTimestamp 2>&1 | tail -n 30 | sed 's/^/  | /' >&2 || true
  for p in $(k8s_kubectl -n "$NS" get pods -o name 2>/dev/null); do
    k8s_log "logs of $p:"
    k8s_kubectl -n "$NS" logs --tail 30 "$p" 2>&1 | sed 's/^/  | /' >&2 || true
  done
  for d in kubelet containerd kube-apiserver; do
    [ -f "$K8S_DIR/logs/$d.log" ] || continue
    k8s_log "last lines of $d:"
    grep -E '^[EW]|level=(error|warning)' "$K8S_DIR/logs/$d.log" | tail -n 15 | sed 's/^/  | /' >&2 || true
  done
}

cleanup() {
  local rc=$?
  trap - EXIT
  [ -n "${sampler:-}" ] && kill "$sampler" 2>/dev/null
  docker image rm -f "$LOAD_IMAGE" >/dev/null 2>&1
  if [ $rc -ne 0 ]; then
    k8s_log "FAILED in step: $failed_step"
    diagnose
  fi
  if [ "${RAFKA_K8S_KEEP:-}" = 1 ]; then
    k8s_log "cluster kept (RAFKA_K8S_KEEP=1): $here/down.sh removes it"
  else
    step "teardown"
    local t=$(date +%s)
    if ! "$here/down.sh"; then
      rc=1
    fi
    figures[teardown]="$(($(date +%s) - t)) s"
  fi
  rm -rf "$tmp"
  if [ ${#figures[@]} -gt 0 ]; then
    printf '\n=== figures\n' >&2
    for k in "${!figures[@]}"; do printf '  %-40s %s\n' "$k" "${figures[$k]}" >&2; done | sort >&2
  fi
  [ $rc = 0 ] && printf '\n=== ok (%d s)\n' "$(($(date +%s) - start))" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kc() { k8s_kubectl "$@"; }
kns() { k8s_kubectl -n "$NS" "$@"; }

# wait_until DESC SECONDS CMD...: polls CMD (0.5 s apart) until it succeeds.
wait_until() {
  local desc=$1 limit=$2 deadline
  shift 2
  deadline=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$desc: not within ${limit}s"
    sleep 0.5
  done
}

now_ms() { date +%s%3N; }

# rafka_in POD ARGS...: runs the rafka CLI in a broker pod, against that
# broker (the pods set RAFKA_BROKERS and RAFKA_TLS_CA).
rafka_in() {
  local pod=$1
  shift
  kns exec "$pod" -c rafka -- /rafka "$@"
}

# ready_broker_pods: the names of the broker pods that are Ready, one a
# line (kubectl's JSONPath has no filter inside a filter: jq picks them).
ready_broker_pods() {
  kns get pods -l "$selector" -o json |
    jq -r '.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True")) | .metadata.name'
}

# a_ready_broker [EXCEPT]: a broker pod that is Ready, other than EXCEPT.
a_ready_broker() {
  local p
  for p in $(ready_broker_pods); do
    [ "$p" != "${1:-}" ] && { echo "$p"; return 0; }
  done
  return 1
}

# cluster_info: `rafka cluster info --json` as a ready broker sees it.
cluster_info() {
  local p
  p=$(a_ready_broker "${1:-}") || return 1
  rafka_in "$p" cluster info --json
}

# alive_brokers N: the cluster lists N brokers, all alive.
alive_brokers() {
  local n=$1
  cluster_info | jq -e --argjson n "$n" '([.brokers[] | select(.state == "alive")] | length) == $n and (.brokers | length) == $n' >/dev/null
}

load_status() { kns exec load -- /load status; }

# ready_pods N: exactly N broker pods are Ready.
ready_pods() {
  local n
  n=$(ready_broker_pods | grep -c .)
  [ "$n" = "$1" ]
}

[ -d "$repo/deploy/k8s/overlays/dev" ] ||
  fail "deploy/k8s/overlays/dev is missing: the overlay under test (deploy/k8s/local/overlay) is built on it"
command -v jq >/dev/null || fail "jq is not installed (apt-get install jq)"

# ---------------------------------------------------------------- cluster
step "cluster: up.sh"
t=$(date +%s)
"$here/up.sh"
figures["cluster up (up.sh)"]="$(($(date +%s) - t)) s"

# The load program's image, FROM scratch like the others.
mkdir -p "$tmp/load-image"
CGO_ENABLED=0 go build -C "$repo" -trimpath -ldflags "-s -w" -o "$tmp/load-image/load" ./deploy/k8s/local/load
printf 'FROM scratch\nCOPY load /load\nUSER 65532:65532\nENTRYPOINT ["/load"]\n' >"$tmp/load-image/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$LOAD_IMAGE" "$tmp/load-image" >/dev/null
docker save "$LOAD_IMAGE" | k8s_ctr images import - >/dev/null
docker image rm -f "$LOAD_IMAGE" >/dev/null

# ---------------------------------------------------------------- 1. brokers
step "1. three brokers Ready; rafka cluster info lists three"
kc kustomize "$here/overlay" >"$tmp/rendered.yaml"
# The brokers' certificate (one for all, as the manifests expect), from a
# CA made for this run, in the kubernetes.io/tls Secret rafka-tls.
go build -C "$repo" -o "$tmp/rafka" ./cmd/rafka
"$tmp/rafka" certs create-ca --out "$tmp/ca" >/dev/null
"$tmp/rafka" certs create-broker --ca-dir "$tmp/ca" --out "$tmp/broker" \
  --host "*.rafka-headless.$NS.svc.cluster.local,rafka-headless.$NS.svc.cluster.local,rafka.$NS.svc.cluster.local,rafka.$NS.svc,rafka.$NS,rafka" >/dev/null
# One hostPath volume per broker (and one more for scaling out), owned by
# the brokers' user, in the storage class the overlay asks for.
for i in 0 1 2 3; do
  d="$K8S_DIR/pv/rafka-$i"
  mkdir -p "$d"
  chown 65532:65532 "$d"
  cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: rafka-local-$i
spec:
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: rafka-local
  hostPath: {path: $d, type: Directory}
EOF
done >"$tmp/pv.yaml"
kc apply -f "$tmp/pv.yaml" >/dev/null
# The namespace first (its labels come with the rest), then the Secret the
# pods mount, then the rest.
kc create namespace "$NS" --save-config >/dev/null
kns create secret generic rafka-tls --type kubernetes.io/tls \
  --from-file tls.crt="$tmp/broker/cert.pem" --from-file tls.key="$tmp/broker/key.pem" \
  --from-file ca.crt="$tmp/ca/ca.pem" >/dev/null
t=$(date +%s)
kc apply -f "$tmp/rendered.yaml" >/dev/null
wait_until "3 broker pods Ready" 300 ready_pods 3
figures["3 brokers Ready after apply"]="$(($(date +%s) - t)) s"
wait_until "rafka cluster info: 3 brokers alive" 120 alive_brokers 3
cluster_info | jq -r '.brokers[] | "  \(.id)  \(.addr)  \(.state)"' >&2

# ---------------------------------------------------------------- 2. topic
step "2. a topic with 3 replicas"
rafka_in "$(a_ready_broker)" topic create "$TOPIC" -p "$PARTITIONS" -r 3 >&2
# Three brokers, three replicas: each hosts every partition.
placed() {
  cluster_info | jq -e --argjson n "$PARTITIONS" '[.brokers[].hosts] == [$n, $n, $n] and ([.brokers[].leads] | add) == $n'
}
wait_until "every broker hosts the $PARTITIONS partitions, each led" 60 placed
cluster_info | jq -r '.brokers[] | "  \(.id) leads \(.leads), hosts \(.hosts)"' >&2

# ---------------------------------------------------------------- 3. load
step "3. a client producing with acks=all at $RATE records/s"
kns apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: load
  labels: {rafka.io/client: "true"}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: load
    image: $LOAD_IMAGE
    imagePullPolicy: Never
    args: [run, --brokers, "rafka.$NS.svc.cluster.local:9092", --tls-ca, /etc/rafka/tls/ca.crt,
           --topic, $TOPIC, --partitions, "$PARTITIONS", --rate, "$RATE",
           --max-records, "200000", --max-duration, 20m, --dir, /run/load]
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {memory: 256Mi}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
    volumeMounts:
    - {name: run, mountPath: /run/load}
    - {name: tls, mountPath: /etc/rafka/tls, readOnly: true}
  volumes:
  - name: run
    emptyDir: {}
  - name: tls
    secret:
      secretName: rafka-tls
      items: [{key: ca.crt, path: ca.crt}]
EOF
wait_until "load pod running" 60 kns exec load -- /load status
producing() { load_status | jq -e '.acked >= 200 and .failed == 0'; }
wait_until "the first 200 records acknowledged" 60 producing
load_status | jq -c . >&2

# ---------------------------------------------------------------- 4. delete
step "4. delete the broker leading the most partitions"
victim=$(cluster_info | jq -r '.brokers | max_by(.leads) | .id')
leads=$(cluster_info | jq -r --arg v "$victim" '.brokers[] | select(.id == $v) | .leads')
old_uid=$(kns get pod "$victim" -o jsonpath='{.metadata.uid}')
old_pv=$(kns get pvc "data-$victim" -o jsonpath='{.spec.volumeName}')
k8s_log "deleting $victim (leads $leads of $PARTITIONS partitions, volume $old_pv)"
# While it is gone and while it starts again: sample its /readyz from the
# node and its endpoint in the client Service; traffic must never be sent
# to it while /readyz says no.
(
  set +e
  while :; do
    ip=$(kns get pod "$victim" -o jsonpath='{.metadata.uid} {.status.podIP}' 2>/dev/null)
    uid=${ip% *} ip=${ip#* }
    if [ -n "$ip" ] && [ "$uid" != "$old_uid" ]; then
      # The endpoint first: while the broker starts, /readyz only goes
      # from failing to passing, so a ready endpoint seen before a failing
      # /readyz is a real violation, not a race of the two reads.
      ready=$(kns get endpointslices -l kubernetes.io/service-name=rafka \
        -o jsonpath="{range .items[*].endpoints[?(@.targetRef.name==\"$victim\")]}{.conditions.ready}{end}")
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$ip:9644/readyz")
      echo "$(now_ms) $code ${ready:-absent}"
    fi
    sleep 0.3
  done
) >"$tmp/readyz.samples" 2>/dev/null &
sampler=$!
kns exec load -- /load mark "delete-$victim"
t_del=$(now_ms)
kns delete pod "$victim" --wait=false >/dev/null
# Leadership moves: the others lead every partition while it is away.
moved() {
  cluster_info "$victim" | jq -e --arg v "$victim" --argjson n "$PARTITIONS" \
    '([.brokers[] | select(.id != $v) | .leads] | add) == $n' >/dev/null
}
wait_until "leadership moved off $victim" 60 moved
figures["$victim deleted: leadership moved"]="$(($(now_ms) - t_del)) ms"
pod_back() {
  local st
  st=$(kns get pod "$victim" -o jsonpath='{.metadata.uid} {.status.conditions[?(@.type=="Ready")].status}') &&
    [ "${st% *}" != "$old_uid" ] && [ "${st#* }" = True ]
}
wait_until "$victim back and Ready" 300 pod_back
t_ready=$(now_ms)
figures["$victim deleted: to Ready"]="$((t_ready - t_del)) ms"
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
sampler=""
new_pv=$(kns get pvc "data-$victim" -o jsonpath='{.spec.volumeName}')
[ "$new_pv" = "$old_pv" ] || fail "$victim came back on volume $new_pv, not $old_pv"
wait_until "$victim rejoined: 3 brokers alive" 120 alive_brokers 3
rejoined() {
  cluster_info | jq -e --arg v "$victim" --argjson n "$PARTITIONS" \
    '.brokers[] | select(.id == $v) | .state == "alive" and .hosts == $n' >/dev/null
}
wait_until "$victim hosts its $PARTITIONS replicas again" 120 rejoined
# /readyz gated the client Service: no sample saw the endpoint ready while
# the broker said it was not.
samples=$(wc -l <"$tmp/readyz.samples")
[ "$samples" -gt 0 ] || fail "no /readyz sample of the restarted $victim"
bad=$(awk '$2 != 200 && $3 == "true"' "$tmp/readyz.samples" | head -n 3)
[ -z "$bad" ] || fail "the client Service sent traffic to $victim while its /readyz failed: $bad"
notready=$(awk '$2 != 200' "$tmp/readyz.samples" | wc -l)
k8s_log "$samples samples of $victim's /readyz while it started: $notready not ready, none of them in the client Service"
figures["$victim deleted: /readyz samples (not ready)"]="$samples ($notready)"
load_status | jq -c . >&2
load_status | jq -e '.failed == 0' >/dev/null || fail "produce calls failed after the pod deletion"

# ---------------------------------------------------------------- 5. rollout
step "5. rolling update under load, PodDisruptionBudget honoured"
kns exec load -- /load mark rollout
t_roll=$(date +%s)
kns patch statefulset "$STS" --type merge \
  -p "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"rafka.io/e2e-rollout\":\"$(date +%s)\"}}}}}" >/dev/null
refused=0
min_ready=3
evict_json='{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"%s","namespace":"'"$NS"'"}}'
deadline=$(($(date +%s) + 900))
while :; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "rolling update not done within 900 s"
  # (A count of 0 is left out of the status: jq puts it back.)
  st=$(kns get statefulset "$STS" -o json |
    jq -r '.status | "\(.updatedReplicas // 0) \(.readyReplicas // 0) \(.currentRevision // "") \(.updateRevision // "")"')
  read -r updated ready cur upd <<<"$st"
  ready=${ready:-0}
  [ "$ready" -lt "$min_ready" ] && min_ready=$ready
  [ "$ready" -ge 2 ] || fail "only $ready brokers ready during the rolling update"
  # While one broker is down, the budget must refuse to let another go.
  # (Once the budget's controller has seen it: two healthy, none allowed.)
  pdb=$(kns get pdb rafka -o json | jq -r '.status | "\(.currentHealthy // 0) \(.disruptionsAllowed // 0)"')
  if [ "$ready" = 2 ] && [ "$pdb" = "2 0" ] && [ $refused = 0 ]; then
    other=$(a_ready_broker) || true
    if [ -n "$other" ]; then
      if out=$(printf "$evict_json" "$other" | kc create --raw "/api/v1/namespaces/$NS/pods/$other/eviction" -f - 2>&1); then
        fail "the PodDisruptionBudget let $other be evicted while another broker was down"
      fi
      case "$out" in
        *"disruption budget"*) refused=1; k8s_log "eviction of $other refused while a broker is down: ${out##*: }" ;;
        *) k8s_log "eviction attempt of $other: $out" ;;
      esac
    fi
  fi
  if [ "${updated:-0}" = 3 ] && [ "$ready" = 3 ] && [ "$cur" = "$upd" ]; then
    break
  fi
  sleep 0.5
done
figures["rolling update of 3 brokers"]="$(($(date +%s) - t_roll)) s"
[ $refused = 1 ] || fail "never saw the PodDisruptionBudget refuse an eviction during the rolling update"
wait_until "3 brokers alive after the rolling update" 120 alive_brokers 3
load_status | jq -c . >&2
load_status | jq -e '.failed == 0' >/dev/null || fail "produce calls failed during the rolling update"

# ---------------------------------------------------------------- 6. scale
# Scale out to 4 brokers and back in to 3, under the same load: the new
# broker takes over replicas on its own, and a drained one hands them back
# before its pod goes.
step "6. scale out to 4 brokers and in to 3"
t=$(date +%s)
kns scale statefulset "$STS" --replicas 4 >/dev/null
wait_until "4 broker pods Ready" 300 ready_pods 4
wait_until "rafka cluster info: 4 brokers alive" 120 alive_brokers 4
moved_to_new() {
  cluster_info | jq -e --argjson n "$PARTITIONS" \
    '(.brokers[] | select(.id == "rafka-3") | .hosts) > 0 and ([.brokers[].hosts] | add) == 3 * $n'
}
wait_until "rafka-3 hosts replicas (moved to it)" 300 moved_to_new
figures["scale out to 4: first replica moved to rafka-3"]="$(($(date +%s) - t)) s"
cluster_info | jq -r '.brokers[] | "  \(.id) leads \(.leads), hosts \(.hosts)"' >&2
t=$(date +%s)
rafka_in rafka-0 cluster drain rafka-3 --wait --timeout 300s >&2
kns scale statefulset "$STS" --replicas 3 >/dev/null
gone() { ! kns get pod rafka-3; }
wait_until "rafka-3 gone" 300 gone
# Nothing under-replicated: each partition on the three live brokers,
# none on rafka-3, no move left.
moved_back() {
  cluster_info | jq -e --argjson n "$PARTITIONS" \
    '[.brokers[] | select(.state == "alive") | .hosts] == [$n, $n, $n] and
     ([.brokers[] | select(.id == "rafka-3") | .hosts] | add) == 0 and (.moves | length) == 0'
}
wait_until "3 brokers host every replica again" 300 moved_back
figures["scale in to 3: replicas moved back"]="$(($(date +%s) - t)) s"
load_status | jq -e '.failed == 0' >/dev/null || fail "produce calls failed while scaling"

# ---------------------------------------------------------------- 7. verify
step "7. every acknowledged record reads back, no produce call failed"
kns exec load -- /load stop
load_done() {
  case "$(kns get pod load -o jsonpath='{.status.phase}')" in Succeeded | Failed) return 0 ;; esac
  return 1
}
wait_until "load verified" 300 load_done
summary=$(kns logs load | grep '^{' | tail -n 1)
echo "$summary" | jq . >&2
echo "$summary" | jq -e .ok >/dev/null || fail "the load reports failed or lost records"
figures["load: records acknowledged"]="$(echo "$summary" | jq -r '"\(.acked) of \(.sent), \(.acks_per_second | floor)/s, \(.failed) failed, \(.lost) lost"')"
figures["load: longest wait between two acks of a partition"]="$(echo "$summary" | jq -r .max_ack_gap_ms) ms"
while read -r name ms; do
  figures["first ack on every partition after $name"]="$ms ms"
done < <(echo "$summary" | jq -r '.marks[] | "\(.name) \(.first_ack_all_partitions_ms)"')
