#!/usr/bin/env bash
# Removes the local test cluster of up.sh, all of it: its processes (the
# daemons by their recorded PIDs, the pods' processes by the cluster's
# cgroups), mounts, iptables rules, routes, the node address, the bridge,
# cgroups and directories. Works after a failed or half-done up.sh, and
# does nothing when there is nothing to remove. Then checks that nothing is
# left and exits 1 naming what is, if anything.
#
#   deploy/k8s/local/down.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
K8S_LOG_PREFIX=down
# shellcheck source=lib.sh
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || k8s_fail "needs root"
start=$(date +%s)

# stop_pid NAME PID EXE: SIGTERM, up to 10 s to exit, then SIGKILL. Only if
# PID still runs EXE, so a reused PID is never signalled.
stop_pid() {
  local name=$1 pid=$2 exe=$3 i
  [ -d "/proc/$pid" ] || return 0
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
  case "$cmd" in "$exe"*) ;; *) return 0 ;; esac
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    [ -d "/proc/$pid" ] || return 0
    sleep 0.1
  done
  k8s_log "$name ($pid) did not stop on SIGTERM; killing it"
  kill -KILL "$pid" 2>/dev/null
}

# cgroup_pids prints the processes in the cluster's cgroups: the pods'.
cgroup_pids() {
  local h
  for h in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    [ -d "$h" ] && find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}

if [ -d "$K8S_DIR" ]; then
  pids_file="$K8S_DIR/pids"
  [ -f "$pids_file" ] || : >"$pids_file"
  # The kubelet first, so that it restarts nothing; then the pods'
  # containers through containerd, so that their shims clean up.
  while read -r name pid exe; do
    [ "$name" = kubelet ] && stop_pid "$name" "$pid" "$exe"
  done <"$pids_file"
  if [ -S "$CTRD_SOCK" ] && k8s_ctr version >/dev/null 2>&1; then
    for t in $(k8s_ctr tasks ls -q 2>/dev/null); do
      k8s_ctr tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1
    done
    for t in $(k8s_ctr tasks ls -q 2>/dev/null); do
      for ((i = 0; i < 50; i++)); do
        k8s_ctr tasks rm -f "$t" >/dev/null 2>&1 && break
        sleep 0.1
      done
    done
    for c in $(k8s_ctr containers ls -q 2>/dev/null); do
      k8s_ctr containers rm "$c" >/dev/null 2>&1
    done
  fi
  # Whatever is left in the pods' cgroups (containerd already gone).
  for ((round = 0; round < 50; round++)); do
    left=$(cgroup_pids)
    [ -z "$left" ] && break
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null
    sleep 0.1
  done
  # The shims of those containers, by the PID files containerd keeps.
  for f in "$K8S_DIR"/containerd/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [ -f "$f" ] || continue
    stop_pid shim "$(cat "$f")" /usr/bin/containerd-shim
  done
  # The daemons, last started first.
  tac "$pids_file" | while read -r name pid exe; do
    stop_pid "$name" "$pid" "$exe"
  done

  # Mounts under the cluster's directory (volumes, overlay roots, network
  # namespaces), deepest first.
  for ((round = 0; round < 5; round++)); do
    mapfile -t mnts < <(awk -v d="$K8S_DIR" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
    [ ${#mnts[@]} = 0 ] && break
    for m in "${mnts[@]}"; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
  done

  # What up.sh changed on the machine, in reverse order.
  if [ -f "$K8S_DIR/undo" ]; then
    mapfile -t undo < <(tac "$K8S_DIR/undo")
    for u in "${undo[@]}"; do
      bash -c "$u" >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$K8S_DIR"
fi
# The kubelet's own chains, which kube-proxy --cleanup leaves: its canary,
# the iptables-mode hint and KUBE-FIREWALL (jumped to from INPUT and OUTPUT);
# and the cgroup the runtime makes in the unified (v2) hierarchy. Also when
# the directory is gone, so that a second run finishes the job.
for ipt in iptables ip6tables; do
  for c in INPUT OUTPUT; do
    while $ipt -t filter -D $c -j KUBE-FIREWALL 2>/dev/null; do :; done
  done
  for tc in mangle:KUBE-KUBELET-CANARY nat:KUBE-KUBELET-CANARY filter:KUBE-KUBELET-CANARY \
    mangle:KUBE-IPTABLES-HINT filter:KUBE-FIREWALL; do
    $ipt -t "${tc%%:*}" -F "${tc#*:}" 2>/dev/null && $ipt -t "${tc%%:*}" -X "${tc#*:}" 2>/dev/null
  done
done
[ -d "/sys/fs/cgroup/unified/$CGROUP_ROOT" ] &&
  find "/sys/fs/cgroup/unified/$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null

# Nothing may be left.
left=()
[ -e "$K8S_DIR" ] && left+=("directory $K8S_DIR")
grep -q " $K8S_DIR" /proc/self/mountinfo && left+=("mounts under $K8S_DIR")
[ -n "$(cgroup_pids)" ] && left+=("processes in cgroups $CGROUP_ROOT: $(cgroup_pids | tr '\n' ' ')")
for h in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
  [ -d "$h" ] && left+=("cgroup $h")
done
ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("interface $BRIDGE")
compgen -G "/var/lib/cni/results/rafka-k8s-*" >/dev/null && left+=("CNI results in /var/lib/cni/results")
ip -4 addr show dev lo | grep -q "inet $NODE_IP/" && left+=("address $NODE_IP on lo")
for r in "$POD_RANGE" "$SERVICE_RANGE"; do
  [ -n "$(ip route show "$r")" ] && left+=("route $r")
done
for save in iptables-save ip6tables-save; do
  rules=$($save 2>/dev/null | grep -E "KUBE-|$CHAIN|$BRIDGE|CNI-" | grep -v '^#')
  [ -n "$rules" ] && left+=("$save rules: $(echo "$rules" | head -5 | tr '\n' ';')")
done
if [ ${#left[@]} -gt 0 ]; then
  for l in "${left[@]}"; do k8s_log "left behind: $l"; done
  exit 1
fi
k8s_log "nothing left ($(($(date +%s) - start)) s)"
