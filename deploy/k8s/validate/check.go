package validate

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kindv1alpha4 "sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

// Overlay renders the kustomization in dir and checks every object: strict
// decoding, the API server's validation, the restricted Pod Security
// Standard, then the cross-object checks of ValidateSet. It returns the
// decoded objects and every problem found.
func Overlay(dir string) ([]*Object, []error) {
	ms, err := Render(dir)
	if err != nil {
		return nil, []error{err}
	}
	var (
		objs []*Object
		errs []error
	)
	for _, m := range ms {
		o, err := Decode(m.Name, m.YAML)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, o)
		errs = append(errs, ValidateAPI(o)...)
	}
	if len(errs) > 0 {
		// The cross-object checks assume valid objects.
		return objs, errs
	}
	return objs, ValidateSet(objs)
}

// StatefulSetOf returns the brokers' StatefulSet of a checked overlay.
func StatefulSetOf(objs []*Object) *appsv1.StatefulSet {
	for _, o := range objs {
		if ss, ok := o.Versioned.(*appsv1.StatefulSet); ok {
			return ss
		}
	}
	return nil
}

// KindConfig checks a kind cluster configuration: decoded strictly into
// kind's own v1alpha4 types (as kind create cluster --config does), with
// nodes enough for the brokers of ss, one per node, in distinct zones.
func KindConfig(path string, ss *appsv1.StatefulSet) []error {
	b, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	var tm struct{ Kind, APIVersion string }
	if err := yaml.Unmarshal(b, &tm); err != nil {
		return []error{fmt.Errorf("%s: %w", path, err)}
	}
	if tm.Kind != "Cluster" || tm.APIVersion != "kind.x-k8s.io/v1alpha4" {
		return []error{fmt.Errorf("%s: kind %q apiVersion %q: want Cluster kind.x-k8s.io/v1alpha4", path, tm.Kind, tm.APIVersion)}
	}
	var cfg kindv1alpha4.Cluster
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		return []error{fmt.Errorf("%s: %w", path, err)}
	}
	var errs []error
	zones := map[string]bool{}
	workers := 0
	for i, n := range cfg.Nodes {
		switch n.Role {
		case kindv1alpha4.ControlPlaneRole:
		case kindv1alpha4.WorkerRole:
			workers++
			if z := n.Labels[corev1.LabelTopologyZone]; z != "" {
				zones[z] = true
			}
		default:
			errs = append(errs, fmt.Errorf("%s: nodes[%d]: role %q: want control-plane or worker", path, i, n.Role))
		}
	}
	replicas := 1
	if ss.Spec.Replicas != nil {
		replicas = int(*ss.Spec.Replicas)
	}
	if workers < replicas {
		errs = append(errs, fmt.Errorf("%s: %d workers for %d brokers: they would share nodes", path, workers, replicas))
	}
	if len(zones) < min(replicas, 3) {
		errs = append(errs, fmt.Errorf("%s: workers in %d zones (label %s): the brokers' zone spreading has nothing to spread over", path, len(zones), corev1.LabelTopologyZone))
	}
	return errs
}

// certificate is the part of a cert-manager Certificate the brokers
// depend on. cert-manager's own schema is not checked here.
type certificate struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		SecretName string   `json:"secretName"`
		IsCA       bool     `json:"isCA"`
		DNSNames   []string `json:"dnsNames"`
		Usages     []string `json:"usages"`
	} `json:"spec"`
}

// CertificateExample checks the cert-manager example against the
// StatefulSet of an overlay rendered into namespace ns: it must issue the
// Secret the pods mount, for every broker's headless name, usable by a
// broker both as server and as client.
func CertificateExample(path string, ss *appsv1.StatefulSet, clusterDomain string) []error {
	b, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	secret := ""
	for _, v := range ss.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secret = v.Secret.SecretName
		}
	}
	var (
		errs  []error
		found bool
	)
	for i, doc := range strings.Split(string(b), "\n---\n") {
		var c certificate
		if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", path, i, err))
			continue
		}
		if !strings.HasPrefix(c.APIVersion, "cert-manager.io/") {
			errs = append(errs, fmt.Errorf("%s: document %d: apiVersion %q is not cert-manager's", path, i, c.APIVersion))
		}
		if c.Kind != "Certificate" || c.Spec.IsCA || c.Spec.SecretName != secret {
			continue
		}
		found = true
		name := fmt.Sprintf("%s: Certificate %s", path, c.Metadata.Name)
		wildcard := fmt.Sprintf("*.%s.%s.svc.%s", ss.Spec.ServiceName, ss.Namespace, clusterDomain)
		if !slices.Contains(c.Spec.DNSNames, wildcard) {
			errs = append(errs, fmt.Errorf("%s: dnsNames %v lack %s: brokers could not verify each other's advertised names", name, c.Spec.DNSNames, wildcard))
		}
		for _, u := range []string{"server auth", "client auth"} {
			if !slices.Contains(c.Spec.Usages, u) {
				errs = append(errs, fmt.Errorf("%s: usages %v lack %q: rafka takes only certificates with both server and client auth from brokers", name, c.Spec.Usages, u))
			}
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("%s: no Certificate issues the Secret %q the brokers mount", path, secret))
	}
	return errs
}

// Join joins problems into one error, one per line, or nil.
func Join(errs []error) error {
	return errors.Join(errs...)
}

// Manifests decodes strictly and validates, as ValidateAPI does, every
// object of a plain (not kustomize) manifest file such as an example.
func Manifests(path string) []error {
	b, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for i, doc := range strings.Split(string(b), "\n---\n") {
		o, err := Decode(fmt.Sprintf("%s: document %d", path, i), []byte(doc))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, ValidateAPI(o)...)
	}
	return errs
}
