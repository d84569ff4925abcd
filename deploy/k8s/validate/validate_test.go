package validate

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// k8sDir is deploy/k8s, the manifests under test.
const k8sDir = ".."

func checkOverlay(t *testing.T, dir string) []*Object {
	t.Helper()
	objs, errs := Overlay(dir)
	for _, err := range errs {
		t.Error(err)
	}
	return objs
}

func TestOverlays(t *testing.T) {
	for _, tc := range []struct {
		overlay   string
		namespace string
		replicas  int32
		hpa       bool
		required  bool // required pod anti-affinity
	}{
		{"dev", "rafka-dev", 3, false, false},
		{"prod", "rafka", 3, true, true},
	} {
		t.Run(tc.overlay, func(t *testing.T) {
			objs := checkOverlay(t, filepath.Join(k8sDir, "overlays", tc.overlay))
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.GVK.Kind]++
			}
			t.Logf("%d objects: %v", len(objs), kinds)
			for _, k := range []string{"Namespace", "ServiceAccount", "StatefulSet", "PodDisruptionBudget", "NetworkPolicy"} {
				if kinds[k] != 1 {
					t.Errorf("%d %s, want 1", kinds[k], k)
				}
			}
			if kinds["Service"] != 2 {
				t.Errorf("%d Services, want 2 (headless and client)", kinds["Service"])
			}
			if got := kinds["HorizontalPodAutoscaler"] == 1; got != tc.hpa {
				t.Errorf("HorizontalPodAutoscaler present %v, want %v", got, tc.hpa)
			}
			ss := StatefulSetOf(objs)
			if ss == nil {
				t.Fatal("no StatefulSet")
			}
			if ss.Namespace != tc.namespace || *ss.Spec.Replicas != tc.replicas {
				t.Errorf("StatefulSet in %q with %d replicas, want %q and %d", ss.Namespace, *ss.Spec.Replicas, tc.namespace, tc.replicas)
			}
			aa := ss.Spec.Template.Spec.Affinity.PodAntiAffinity
			if got := len(aa.RequiredDuringSchedulingIgnoredDuringExecution) > 0; got != tc.required {
				t.Errorf("required anti-affinity %v, want %v", got, tc.required)
			}
			if tc.required && len(aa.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
				t.Errorf("required anti-affinity alongside the preferred one of the base")
			}
		})
	}
}

func TestKindConfig(t *testing.T) {
	objs := checkOverlay(t, filepath.Join(k8sDir, "overlays", "dev"))
	for _, err := range KindConfig(filepath.Join(k8sDir, "kind.yaml"), StatefulSetOf(objs)) {
		t.Error(err)
	}
}

func TestCertificateExample(t *testing.T) {
	objs := checkOverlay(t, filepath.Join(k8sDir, "overlays", "dev"))
	for _, err := range CertificateExample(filepath.Join(k8sDir, "examples", "certificate.yaml"), StatefulSetOf(objs), "cluster.local") {
		t.Error(err)
	}
}

func TestUDPBuffersExample(t *testing.T) {
	for _, err := range Manifests(filepath.Join(k8sDir, "examples", "udp-buffers.yaml")) {
		t.Error(err)
	}
}

// copyManifests copies deploy/k8s, without this module, to a temporary
// directory.
func copyManifests(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(k8sDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(k8sDir, path)
		if d.IsDir() {
			if rel == "validate" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestBrokenManifests breaks one manifest at a time, in a copy, and checks
// that the result is rejected with a message that says what is wrong.
func TestBrokenManifests(t *testing.T) {
	const (
		sts = "base/statefulset.yaml"
		dev = "overlays/dev"
	)
	for _, tc := range []struct {
		name     string
		file     string // relative to deploy/k8s
		old, new string // replaced exactly once
		check    string // overlay dir, or kind.yaml, or examples/certificate.yaml
		want     string // in one of the messages
	}{
		{"unknown field", sts, "terminationGracePeriodSeconds: 90", "terminationGracePeriodSecond: 90", dev,
			`unknown field "spec.template.spec.terminationGracePeriodSecond"`},
		{"duplicate field", sts, "      enableServiceLinks: false\n", "      enableServiceLinks: false\n      enableServiceLinks: true\n", dev,
			`mapping key "enableServiceLinks" already defined`},
		{"wrong type", "base/serviceaccount.yaml", "automountServiceAccountToken: false", "automountServiceAccountToken: nope", dev,
			"automountServiceAccountToken"},
		{"selector does not match template", sts, "    metadata:\n      labels:\n        app.kubernetes.io/name: rafka\n        app.kubernetes.io/component: broker",
			"    metadata:\n      labels:\n        app.kubernetes.io/name: rafka\n        app.kubernetes.io/component: brokers", dev,
			"`selector` does not match template `labels`"},
		{"invalid env name", sts, "- name: CLUSTER_DOMAIN", "- name: CLUSTER-DOMAIN=", dev,
			"spec.template.spec.containers[0].env[2].name: Invalid value"},
		{"probe port not on container", sts, "path: /readyz\n              port: admin", "path: /readyz\n              port: admn", dev,
			`readinessProbe port admn is not a port of the container`},
		{"probe path", sts, "path: /readyz", "path: /healthz", dev,
			`readinessProbe path "/healthz": want /readyz`},
		{"serviceName not headless", sts, "serviceName: rafka-headless", "serviceName: rafka", dev,
			`serviceName "rafka" names a Service that is not headless`},
		{"serviceName unknown", sts, "serviceName: rafka-headless", "serviceName: rafka-peers", dev,
			`serviceName "rafka-peers" names no Service`},
		{"not Parallel", sts, "podManagementPolicy: Parallel", "podManagementPolicy: OrderedReady", dev,
			"podManagementPolicy \"OrderedReady\": brokers join in any order"},
		{"capabilities kept", sts, `drop: ["ALL"]`, `drop: ["NET_RAW"]`, dev,
			"violates the restricted Pod Security Standard: unrestricted capabilities"},
		{"root allowed", sts, "        runAsNonRoot: true\n        runAsUser: 65532\n        runAsGroup: 65532\n        # The volume",
			"        runAsNonRoot: false\n        runAsUser: 65532\n        runAsGroup: 65532\n        # The volume", dev,
			"violates the restricted Pod Security Standard: runAsNonRoot != true"},
		{"token mounted", sts, "      automountServiceAccountToken: false", "      automountServiceAccountToken: true", dev,
			"automountServiceAccountToken must be false"},
		{"grace too short", sts, "terminationGracePeriodSeconds: 90", "terminationGracePeriodSeconds: 30", dev,
			"terminationGracePeriodSeconds 30s is shorter than the preStop drain (1m0s) plus the broker's shutdown (20s)"},
		{"preStop without timeout", sts, `"--wait", "--timeout", "60s"]`, `"--wait"]`, dev,
			"needs --timeout D"},
		{"preStop with $(VAR)", sts, `"--timeout", "60s"]`, `"--timeout", "60s", "$(POD_NAME)"]`, dev,
			"the kubelet does not expand $(VAR) in hook commands"},
		{"env used before defined", sts, "            - name: POD_NAMESPACE\n              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.namespace\n", "", dev,
			"env RAFKA_ADVERTISED_ADDR uses $(POD_NAMESPACE), which is not defined before it"},
		{"broker id not the pod name", sts, "            - name: RAFKA_BROKER_ID\n              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.name",
			"            - name: RAFKA_BROKER_ID\n              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.uid", dev,
			"RAFKA_BROKER_ID must come from the pod name"},
		{"join without founder", sts, "value: rafka-0.rafka-headless.$(POD_NAMESPACE)", "value: rafka-1.rafka-headless.$(POD_NAMESPACE)", dev,
			"the first address must be the founder"},
		{"data dir not persistent", sts, "value: /data\n", "value: /tmp/data\n", dev,
			`RAFKA_DATA_DIR "/tmp/data" is not on a volume from volumeClaimTemplates`},
		{"tls not from a Secret", sts, "value: /etc/rafka/tls/ca.crt", "value: /data/ca.crt", dev,
			`RAFKA_TLS_CA "/data/ca.crt" is not in a mounted Secret`},
		{"volume claim name", "overlays/dev/statefulset.yaml", "    - metadata:\n        name: data\n", "    - metadata:\n        name: storage\n", dev,
			`volumeMounts[0].name: Not found: "data"`},
		{"dev patch names a new container", "overlays/dev/statefulset.yaml", "- name: rafka", "- name: rafak", dev,
			"containers[0].image: Required value"},
		{"headless publishes ready pods only", "base/service-headless.yaml", "publishNotReadyAddresses: true", "publishNotReadyAddresses: false", dev,
			"without publishNotReadyAddresses: true"},
		{"headless with a cluster IP", "base/service-headless.yaml", "  clusterIP: None\n", "", dev,
			"is not headless"},
		{"service over TCP", "base/service.yaml", "protocol: UDP", "protocol: TCP", dev,
			"port quic is TCP but targets container port quic, which is UDP"},
		{"service selects nothing", "base/service.yaml", "app.kubernetes.io/component: broker", "app.kubernetes.io/component: client", dev,
			"does not select the broker pods"},
		{"service target port", "base/service.yaml", "targetPort: quic", "targetPort: 9093", dev,
			"targetPort 9093 is not a port of container rafka"},
		{"pdb both fields", "base/pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 1\n  minAvailable: 2", dev,
			"minAvailable and maxUnavailable cannot be both set"},
		{"pdb loses quorum", "base/pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 2", dev,
			"maxUnavailable must be 1"},
		{"pdb selects nothing", "base/pdb.yaml", "app.kubernetes.io/component: broker", "app.kubernetes.io/component: brokers", dev,
			"PodDisruptionBudget rafka-dev/rafka: selector does not select the broker pods"},
		{"hpa min above max", "base/hpa.yaml", "minReplicas: 3", "minReplicas: 12", "overlays/prod",
			"spec.maxReplicas: Invalid value: 9: must be greater than or equal to `minReplicas`"},
		{"hpa scales in", "base/hpa.yaml", "selectPolicy: Disabled", "selectPolicy: Min", "overlays/prod",
			"scaleDown must be disabled"},
		{"hpa target", "base/hpa.yaml", "    name: rafka\n  minReplicas", "    name: rafka-brokers\n  minReplicas", "overlays/prod",
			"is not the brokers' StatefulSet"},
		{"networkpolicy selects nothing", "base/networkpolicy.yaml", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: rafka", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: rafka-broker", dev,
			"podSelector does not select the broker pods"},
		{"networkpolicy wrong protocol", "base/networkpolicy.yaml", "        - port: admin\n          protocol: TCP", "        - port: admin\n          protocol: UDP", dev,
			"port admin is UDP here but TCP on the container"},
		{"networkpolicy without peers", "base/networkpolicy.yaml", "    # Other brokers.\n    - from:\n        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: rafka\n              app.kubernetes.io/component: broker\n      ports:\n        - port: quic\n          protocol: UDP\n", "", dev,
			"no ingress rule lets the broker pods reach each other"},
		{"namespace not restricted", "overlays/dev/namespace.yaml", "enforce: restricted", "enforce: baseline", dev,
			`label pod-security.kubernetes.io/enforce is "baseline": want restricted`},
		{"namespace name", "overlays/prod/kustomization.yaml", "namespace: rafka", "namespace: Rafka", "overlays/prod",
			"metadata.name: Invalid value: \"Rafka\""},
		{"missing resource", "base/kustomization.yaml", "  - pdb.yaml\n", "  - pdb.yaml\n  - quota.yaml\n", dev,
			"quota.yaml"},
		{"kind unknown field", "kind.yaml", "    labels:\n      topology.kubernetes.io/zone: zone-a", "    label:\n      topology.kubernetes.io/zone: zone-a", "kind.yaml",
			`unknown field "label"`},
		{"kind too few workers", "kind.yaml", "  - role: worker\n    labels:\n      topology.kubernetes.io/zone: zone-c\n", "", "kind.yaml",
			"2 workers for 3 brokers"},
		{"example with a bad field", "examples/udp-buffers.yaml", "hostNetwork: true", "hostNetwork: yes please", "examples/udp-buffers.yaml",
			"hostNetwork"},
		{"certificate without the headless wildcard", "examples/certificate.yaml", `    - "*.rafka-headless.rafka-dev.svc.cluster.local"`, `    - "*.rafka.rafka-dev.svc.cluster.local"`, "examples/certificate.yaml",
			"lack *.rafka-headless.rafka-dev.svc.cluster.local"},
		{"certificate server only", "examples/certificate.yaml", "    - client auth\n", "", "examples/certificate.yaml",
			`lack "client auth"`},
		{"certificate for another secret", "examples/certificate.yaml", "  secretName: rafka-tls", "  secretName: rafka-broker-tls", "examples/certificate.yaml",
			`no Certificate issues the Secret "rafka-tls"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyManifests(t)
			path := filepath.Join(dir, tc.file)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(b), tc.old); n != 1 {
				t.Fatalf("%s has %d copies of %q, want 1: update the test", tc.file, n, tc.old)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(b), tc.old, tc.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			var errs []error
			switch tc.check {
			case "examples/udp-buffers.yaml":
				errs = Manifests(path)
			case "kind.yaml", "examples/certificate.yaml":
				objs, oerrs := Overlay(filepath.Join(dir, "overlays", "dev"))
				if len(oerrs) > 0 {
					t.Fatalf("the dev overlay: %v", Join(oerrs))
				}
				if tc.check == "kind.yaml" {
					errs = KindConfig(path, StatefulSetOf(objs))
				} else {
					errs = CertificateExample(path, StatefulSetOf(objs), "cluster.local")
				}
			default:
				_, errs = Overlay(filepath.Join(dir, tc.check))
			}
			if len(errs) == 0 {
				t.Fatalf("accepted; want an error with %q", tc.want)
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.want) {
					t.Logf("rejected: %v", err)
					return
				}
			}
			t.Errorf("no error has %q; got:\n%v", tc.want, Join(errs))
		})
	}
}

// TestChecksSeeTheBrokers guards the checks themselves: an overlay whose
// objects are valid one by one but do not fit together must fail
// ValidateSet, not pass it vacuously.
func TestChecksSeeTheBrokers(t *testing.T) {
	objs := checkOverlay(t, filepath.Join(k8sDir, "overlays", "prod"))
	var rest []*Object
	for _, o := range objs {
		switch o.Versioned.(type) {
		case *appsv1.StatefulSet, *autoscalingv2.HorizontalPodAutoscaler:
		default:
			rest = append(rest, o)
		}
	}
	errs := ValidateSet(rest)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "want exactly one StatefulSet") {
		t.Errorf("without the StatefulSet: %v", Join(errs))
	}
}

// FuzzDecode: the strict decoder rejects, never panics on, any input, and
// what it accepts validates without panicking.
func FuzzDecode(f *testing.F) {
	for _, o := range []string{"dev", "prod"} {
		ms, err := Render(filepath.Join(k8sDir, "overlays", o))
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range ms {
			f.Add(m.YAML)
		}
	}
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: y}\nspec: {ports: [{port: 0}]}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := Decode("fuzz", b)
		if err != nil {
			return
		}
		ValidateAPI(o)
	})
}
