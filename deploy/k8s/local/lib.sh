# Shared by up.sh, down.sh and test.sh (sourced, not run): the addresses,
# directories and names of the local test cluster, and how what up.sh does
# is recorded so that down.sh can undo it.
#
# Everything the cluster creates lives under $K8S_DIR, and every change
# made to the machine outside it (an address, a route, an iptables rule, a
# cgroup, a sysctl) is written to $K8S_DIR/undo, one shell command per
# line, before it is made. down.sh runs those lines in reverse order.

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"
K8S_DIR="${RAFKA_K8S_DIR:-/var/lib/rafka-k8s}"
K8S_CACHE="${RAFKA_K8S_CACHE:-/var/cache/rafka-k8s}/$K8S_VERSION"

# Addresses that exist only on this machine: the node's address (on lo),
# the pod range (one /24 used, the /16 blackholed) and the service range.
NODE_IP=10.200.0.1
NODE_NAME=rafka-k8s-node
POD_RANGE=10.244.0.0/16
POD_SUBNET=10.244.0.0/24
SERVICE_RANGE=10.96.0.0/16
DNS_IP=10.96.0.10
BRIDGE=rafkacni0
CHAIN=RAFKA-K8S
CGROUP_ROOT=rafka-k8s
ETCD_PORT=23790
ETCD_PEER_PORT=23800
APISERVER_PORT=6443

# Images given to containerd (the rafka one is chosen by the overlay).
PAUSE_IMAGE=localhost/rafka-k8s-pause:1
COREDNS_IMAGE="localhost/rafka-k8s-coredns:$COREDNS_VERSION"

CTRD_SOCK="$K8S_DIR/containerd/containerd.sock"
KUBECONFIG_FILE="$K8S_DIR/pki/admin.kubeconfig"

k8s_log() { printf '%s: %s\n' "${K8S_LOG_PREFIX:-k8s}" "$*" >&2; }
k8s_fail() { k8s_log "FAIL: $*"; exit 1; }

# k8s_undo CMD... records a command that reverses the change about to be
# made. Recorded first, so that a change half made is still undone.
k8s_undo() { printf '%s\n' "$*" >>"$K8S_DIR/undo"; }

# k8s_ctr runs ctr against the cluster's own containerd.
k8s_ctr() { ctr -a "$CTRD_SOCK" -n k8s.io "$@"; }

# k8s_kubectl runs the cached kubectl against the cluster.
k8s_kubectl() { "$K8S_CACHE/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
