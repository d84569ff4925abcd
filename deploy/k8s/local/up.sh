#!/usr/bin/env bash
# Brings up a throwaway single-node Kubernetes cluster on this machine, for
# the end-to-end test of the broker's StatefulSet (test.sh). Needs root and
# no network access: every binary is built from the Go module proxy
# (build.sh, cached) or comes from Debian packages (installed with apt-get
# when missing), and every image is built here FROM scratch.
#
#   deploy/k8s/local/up.sh      # then: export KUBECONFIG=/var/lib/rafka-k8s/pki/admin.kubeconfig
#   deploy/k8s/local/down.sh    # removes all of it, also after a failed up.sh
#
# What runs: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# a containerd of its own (own socket and directories), kubelet and
# kube-proxy as processes; CoreDNS as a pod. The node's address is
# $NODE_IP on lo; pods get addresses in $POD_SUBNET on the bridge $BRIDGE
# and services in $SERVICE_RANGE, ranges routed nowhere else (blackhole
# routes). Pods reach each other and the API server, and nothing outside
# the node: iptables drops what they send elsewhere and CoreDNS forwards no
# query. The rafka image (deploy/docker/build.sh) is loaded as
# localhost/rafka:k8s-local.
#
# The kubeconfig is $K8S_DIR/pki/admin.kubeconfig and a kubectl of the
# cluster's version is in the binary cache (build.sh prints where).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
K8S_LOG_PREFIX=up
# shellcheck source=lib.sh
. "$here/lib.sh"

start=$(date +%s)
[ "$(id -u)" = 0 ] || k8s_fail "needs root (it starts a kubelet and changes routes and iptables)"
[ -e "$K8S_DIR" ] && k8s_fail "$K8S_DIR exists: a cluster is up or was not torn down; run $here/down.sh"

# --- machine prerequisites: say exactly what is missing, never skip.
need_pkgs=()
for pc in etcd:etcd-server containerd:containerd containerd-shim-runc-v2:containerd runc:runc \
  ctr:containerd iptables:iptables ip6tables:iptables conntrack:conntrack; do
  command -v "${pc%%:*}" >/dev/null || need_pkgs+=("${pc#*:}")
done
for p in bridge host-local portmap loopback; do
  [ -x "/usr/lib/cni/$p" ] || need_pkgs+=(containernetworking-plugins)
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
  k8s_log "installing Debian packages: ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2 ||
    k8s_fail "could not install ${need_pkgs[*]} (apt-get update first?)"
fi
for c in go docker openssl ip curl; do
  command -v "$c" >/dev/null || k8s_fail "$c is not installed"
done
docker info >/dev/null 2>&1 || k8s_fail "no Docker Engine answers (needed to build the images)"
grep -qw overlay /proc/filesystems || k8s_fail "the kernel has no overlay filesystem (containerd's snapshotter)"
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ||
  k8s_fail "bridge netfilter is missing (modprobe br_netfilter): pod traffic would bypass iptables"
[ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ] || k8s_fail "needs cgroup v1 (this kubelet setup uses cgroupfs v1 hierarchies)"
for sub in cpu cpuacct cpuset memory pids devices freezer blkio; do
  [ -d "/sys/fs/cgroup/$sub" ] || k8s_fail "cgroup v1 controller $sub is not mounted at /sys/fs/cgroup/$sub"
done
ip -4 addr show | grep -q "inet $NODE_IP/" && k8s_fail "$NODE_IP is already in use on this machine"
ip link show "$BRIDGE" >/dev/null 2>&1 && k8s_fail "interface $BRIDGE already exists"
for r in "$POD_RANGE" "$SERVICE_RANGE"; do
  [ -z "$(ip route show "$r")" ] || k8s_fail "a route for $r already exists"
done

# --- binaries (cached by version) and the cluster's directory.
bins="$("$here/build.sh")"
[ "$bins" = "$K8S_CACHE" ] || k8s_fail "build.sh built into $bins, expected $K8S_CACHE"
mkdir -p "$K8S_DIR"
k8s_undo "rm -rf '$K8S_DIR'"
mkdir -p "$K8S_DIR"/{pki,logs,etcd,containerd,kubelet,pods-logs,cni/net.d,cni/ipam,pv,images}
: >"$K8S_DIR/pids"
: >"$K8S_DIR/resolv.conf" # pods resolve through CoreDNS only; the kubelet gives them no upstream

# run NAME BIN ARGS... starts a daemon in a session of its own, logging to
# logs/NAME.log, and records its PID for down.sh.
run() {
  local name=$1
  shift
  setsid "$@" >"$K8S_DIR/logs/$name.log" 2>&1 </dev/null &
  echo "$name $! $1" >>"$K8S_DIR/pids"
}

# wait_for DESC SECONDS CMD... polls CMD until it succeeds, failing after
# SECONDS (and when a recorded daemon has died meanwhile).
wait_for() {
  local desc=$1 limit=$2 deadline
  shift 2
  deadline=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    while read -r name pid _; do
      kill -0 "$pid" 2>/dev/null || k8s_fail "$name exited while waiting for $desc; see $K8S_DIR/logs/$name.log:
$(tail -n 20 "$K8S_DIR/logs/$name.log")"
    done <"$K8S_DIR/pids"
    [ "$(date +%s)" -lt "$deadline" ] || k8s_fail "$desc: not within ${limit}s"
    sleep 0.3
  done
}

# --- credentials: a CA, the API server's certificate, the service-account
# signing key and one static token in system:masters for every component.
pki="$K8S_DIR/pki"
(
  cd "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=rafka-k8s-ca \
    -keyout ca.key -out ca.crt 2>/dev/null
  printf '%s\n' "subjectAltName=IP:$NODE_IP,IP:10.96.0.1,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
    "extendedKeyUsage=serverAuth" "keyUsage=digitalSignature,keyEncipherment" >apiserver.ext
  openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout apiserver.key -out apiserver.csr 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile apiserver.ext -out apiserver.crt 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  token=$(openssl rand -hex 24)
  echo "$token,admin,admin,system:masters" >tokens.csv
  cat >admin.kubeconfig <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
EOF
  chmod 600 ./*.key tokens.csv admin.kubeconfig
)

# --- network: the node address, routes to nowhere for the cluster's
# ranges, and the iptables rules that keep pods' packets on the node.
k8s_undo "ip addr del $NODE_IP/32 dev lo"
ip addr add "$NODE_IP/32" dev lo
for r in "$POD_RANGE" "$SERVICE_RANGE"; do
  k8s_undo "ip route del blackhole $r"
  ip route add blackhole "$r"
done
for kv in net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1; do
  k=${kv%%=*}
  old=$(sysctl -n "$k")
  if [ "$old" != "${kv#*=}" ]; then
    k8s_undo "sysctl -qw $k=$old"
    sysctl -qw "$kv"
  fi
done
k8s_undo "ip link del $BRIDGE"
# The bridge is made here, not by the CNI plugin on the first pod, so
# that the rules below exist before any pod does.
ip link add "$BRIDGE" type bridge
ip link set "$BRIDGE" up
# filter: pod to pod across the bridge is allowed (Docker's FORWARD policy
# is DROP); pods reach the host only for the API server, and answers.
# mangle FORWARD, which comes before filter and which kube-proxy leaves
# alone: a pod's packet to anything but another pod is dropped, and so is
# anything forwarded to a pod from outside the bridge.
for t in filter mangle; do
  k8s_undo "iptables -t $t -X $CHAIN"
  k8s_undo "iptables -t $t -F $CHAIN"
  iptables -t $t -N "$CHAIN"
done
k8s_undo "iptables -t filter -X $CHAIN-IN"
k8s_undo "iptables -t filter -F $CHAIN-IN"
iptables -N "$CHAIN-IN"
iptables -A "$CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
iptables -A "$CHAIN-IN" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -A "$CHAIN-IN" -d "$NODE_IP" -p tcp --dport "$APISERVER_PORT" -j ACCEPT
iptables -A "$CHAIN-IN" -j DROP
iptables -t mangle -A "$CHAIN" -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
iptables -t mangle -A "$CHAIN" -o "$BRIDGE" ! -i "$BRIDGE" -j DROP
for rule in "filter FORWARD -j $CHAIN" "filter INPUT -i $BRIDGE -j $CHAIN-IN" "mangle FORWARD -j $CHAIN"; do
  read -r t c rest <<<"$rule"
  k8s_undo "iptables -t $t -D $c $rest"
  # shellcheck disable=SC2086
  iptables -t "$t" -I "$c" 1 $rest
done
k8s_undo "ip6tables -t filter -X $CHAIN"
k8s_undo "ip6tables -t filter -F $CHAIN"
ip6tables -N "$CHAIN"
ip6tables -A "$CHAIN" -j DROP
for c in FORWARD INPUT; do
  k8s_undo "ip6tables -t filter -D $c -i $BRIDGE -j $CHAIN"
  ip6tables -I "$c" 1 -i "$BRIDGE" -j "$CHAIN"
done
cat >"$K8S_DIR/cni/net.d/10-rafka-k8s.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "rafka-k8s",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_SUBNET"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$K8S_DIR/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

# --- cgroups: the kubelet's root in every v1 hierarchy, removed by down.sh
# once the processes in it are gone.
for h in /sys/fs/cgroup/*/; do
  h=${h%/}
  [ "$(basename "$h")" = unified ] && continue
  [ -d "$h/$CGROUP_ROOT" ] && k8s_fail "cgroup $h/$CGROUP_ROOT exists: run $here/down.sh"
  k8s_undo "find '$h/$CGROUP_ROOT' -depth -type d -exec rmdir {} + 2>/dev/null || true"
  mkdir "$h/$CGROUP_ROOT"
done
# A new v1 cpuset starts with no CPUs and no memory nodes: give it all.
for f in cpuset.cpus cpuset.mems; do
  cat "/sys/fs/cgroup/cpuset/$f" >"/sys/fs/cgroup/cpuset/$CGROUP_ROOT/$f"
done
# /var/log/containers is where the kubelet links container logs, whatever
# its configuration says.
if [ ! -d /var/log/containers ]; then
  k8s_undo "rmdir /var/log/containers"
fi
k8s_undo "find /var/log/containers -maxdepth 1 -lname '$K8S_DIR/*' -delete 2>/dev/null || true"
# containerd's CNI library caches each pod's network in /var/lib/cni.
if [ ! -d /var/lib/cni ]; then
  k8s_undo "rm -rf /var/lib/cni"
fi
k8s_undo "rm -f /var/lib/cni/results/rafka-k8s-*"

# --- control plane.
bin="$K8S_CACHE"
run etcd etcd --name rafka-k8s --data-dir "$K8S_DIR/etcd" \
  --listen-client-urls "http://$NODE_IP:$ETCD_PORT" --advertise-client-urls "http://$NODE_IP:$ETCD_PORT" \
  --listen-peer-urls "http://$NODE_IP:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://$NODE_IP:$ETCD_PEER_PORT" \
  --initial-cluster "rafka-k8s=http://$NODE_IP:$ETCD_PEER_PORT" \
  --quota-backend-bytes 1073741824
wait_for "etcd healthy" 30 curl -fsS "http://$NODE_IP:$ETCD_PORT/health"

run kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://$NODE_IP:$ETCD_PORT" \
  --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --cert-dir "$pki" \
  --anonymous-auth=false --token-auth-file "$pki/tokens.csv" --authorization-mode AlwaysAllow \
  --service-cluster-ip-range "$SERVICE_RANGE" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --kubelet-preferred-address-types InternalIP \
  --profiling=false --v=1
wait_for "API server ready" 90 k8s_kubectl get --raw /readyz

run kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$KUBECONFIG_FILE" --bind-address "$NODE_IP" --leader-elect=false \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-cidr "$POD_RANGE" --service-cluster-ip-range "$SERVICE_RANGE" \
  --profiling=false --v=1
run kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig "$KUBECONFIG_FILE" --bind-address "$NODE_IP" --leader-elect=false --profiling=false --v=1

# --- the node: containerd, images, kubelet, kube-proxy.
cat >"$K8S_DIR/containerd/config.toml" <<EOF
version = 2
root = "$K8S_DIR/containerd/root"
state = "$K8S_DIR/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Root here lacks CAP_SYS_RESOURCE: runc cannot lower a container's
  # oom_score_adj below its own, and fails every sandbox unless told to clamp.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$K8S_DIR/cni/net.d"
    max_conf_num = 1
EOF
run containerd containerd --config "$K8S_DIR/containerd/config.toml"

# Images, built FROM scratch and handed to containerd while it starts.
img="$K8S_DIR/images"
CGO_ENABLED=0 go build -C "$repo" -trimpath -ldflags "-s -w" -o "$img/pause/pause" ./deploy/k8s/local/pause
printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$img/pause/Dockerfile"
mkdir -p "$img/coredns"
cp "$K8S_CACHE/coredns" "$img/coredns/coredns"
printf 'FROM scratch\nCOPY coredns /coredns\nUSER 65532:65532\nENTRYPOINT ["/coredns"]\n' >"$img/coredns/Dockerfile"
for pair in "$PAUSE_IMAGE $img/pause" "$COREDNS_IMAGE $img/coredns"; do
  read -r tag dir <<<"$pair"
  k8s_undo "docker image rm -f $tag >/dev/null 2>&1 || true"
  DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$dir" >/dev/null
done
k8s_undo "docker image rm -f localhost/rafka:k8s-local >/dev/null 2>&1 || true"
"$repo/deploy/docker/build.sh" localhost/rafka:k8s-local >/dev/null
wait_for "containerd serving" 30 k8s_ctr version
for tag in "$PAUSE_IMAGE" "$COREDNS_IMAGE" localhost/rafka:k8s-local; do
  docker save "$tag" | k8s_ctr images import - >/dev/null
  docker image rm -f "$tag" >/dev/null
done

cat >"$K8S_DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: $NODE_IP
healthzPort: 10248
containerRuntimeEndpoint: unix://$CTRD_SOCK
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
failSwapOn: false
failCgroupV1: false
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $K8S_DIR/resolv.conf
podCIDR: $POD_SUBNET
podLogsDir: $K8S_DIR/pods-logs
maxPods: 30
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%}
localStorageCapacityIsolation: false
EOF
# The kubelet sets these kernel tunables to its liking at start: record
# them to put them back.
for k in vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
  k8s_undo "sysctl -qw $k=$(sysctl -n "$k")"
done
run kubelet "$bin/kubelet" --config "$K8S_DIR/kubelet/config.yaml" --kubeconfig "$KUBECONFIG_FILE" \
  --root-dir "$K8S_DIR/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
k8s_undo "'$K8S_CACHE/kube-proxy' --cleanup --v=0 >/dev/null 2>&1 || true"
run kube-proxy "$bin/kube-proxy" --kubeconfig "$KUBECONFIG_FILE" --proxy-mode iptables \
  --hostname-override "$NODE_NAME" --cluster-cidr "$POD_RANGE" \
  --bind-address "$NODE_IP" --metrics-bind-address "$NODE_IP:10249" --healthz-bind-address "$NODE_IP:10256" \
  --nodeport-addresses "$NODE_IP/32" \
  --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0 \
  --v=1

wait_for "node $NODE_NAME Ready" 120 k8s_kubectl wait --for condition=Ready --timeout 2s "node/$NODE_NAME"
wait_for "the default service account" 60 k8s_kubectl -n kube-system get serviceaccount default

# --- CoreDNS, with no forward plugin: cluster names only.
sed -e "s#@COREDNS_IMAGE@#$COREDNS_IMAGE#" -e "s#@DNS_IP@#$DNS_IP#" "$here/coredns.yaml" |
  k8s_kubectl apply -f - >/dev/null
wait_for "CoreDNS ready" 120 k8s_kubectl -n kube-system rollout status deployment/coredns --timeout 2s

k8s_log "cluster up in $(($(date +%s) - start)) s; KUBECONFIG=$KUBECONFIG_FILE, kubectl: $K8S_CACHE/kubectl"
