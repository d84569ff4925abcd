// Package validate checks the Kubernetes manifests of deploy/k8s without a
// cluster, as strictly as an API server would take them, and then for what
// an API server cannot know: that the objects fit together and fit the
// broker.
//
// It renders each kustomize overlay with the kustomize library (the code
// behind kubectl apply -k) and, for every object:
//
//   - decodes it strictly into the Kubernetes API's Go types of the pinned
//     release (go.mod: k8s.io/kubernetes): an unknown or duplicated field
//     is an error, as with kubectl apply --validate=strict;
//   - applies the API's defaults, converts it to the internal version and
//     runs the API server's own validation of that kind, with the options
//     its registry strategy uses on create (selector matching the template
//     labels, a PodDisruptionBudget with both minAvailable and
//     maxUnavailable, an autoscaler's minReplicas above maxReplicas, ...);
//   - checks pod templates against the "restricted" Pod Security Standard
//     with the admission plugin's own checks (k8s.io/pod-security-admission).
//
// Then the cross-object and broker checks of semantic.go: the StatefulSet's
// serviceName names a headless Service that publishes not-ready pods, every
// Service, PodDisruptionBudget and NetworkPolicy selects the broker pods,
// probe and Service ports exist on the container with the right protocol,
// the preStop drain fits in the termination grace period, the broker's
// identity, advertised address and --join come from the pod name through
// the headless Service, and so on. kind.yaml is decoded strictly into
// kind's own config types; the cert-manager example is checked against the
// StatefulSet it serves (cert-manager's schema is not vendored here).
//
// It is a module of its own so that the broker's module does not depend on
// Kubernetes. The Kubernetes version the objects are checked against is the
// one in go.mod; update k8s.io/kubernetes and the replace block together.
package validate
