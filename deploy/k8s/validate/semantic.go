package validate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// What the broker image and rafka serve expect (deploy/docker/Dockerfile,
// cmd/rafka): the container the checks look at, its ports, its health
// endpoints and the pod security profile its namespace enforces.
const (
	brokerContainer = "rafka"
	quicPort        = "quic"  // UDP: clients and brokers
	adminPort       = "admin" // TCP: /metrics, /healthz, /readyz
	healthzPath     = "/healthz"
	readyzPath      = "/readyz"
	// drainCommand is how the preStop hook starts: rafka cluster drain of
	// this broker, leaderships only, waiting until it leads nothing.
	drainCommand = "/rafka cluster drain"
	// shutdownMargin is what the kubelet should leave, past the drain and
	// the broker's own shutdown, before SIGKILL.
	shutdownMargin = 5 * time.Second
)

// podTemplateOf returns the pod template of a workload, or nils.
func podTemplateOf(obj any) (*corev1.PodSpec, *corev1.PodTemplateSpec) {
	if ss, ok := obj.(*appsv1.StatefulSet); ok {
		return &ss.Spec.Template.Spec, &ss.Spec.Template
	}
	return nil, nil
}

// set is a rendered overlay, decoded, by kind.
type set struct {
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	accounts     []*corev1.ServiceAccount
	namespaces   []*corev1.Namespace
	pdbs         []*policyv1.PodDisruptionBudget
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	policies     []*networkingv1.NetworkPolicy
}

func newSet(objs []*Object) *set {
	s := &set{}
	for _, o := range objs {
		switch v := o.Versioned.(type) {
		case *appsv1.StatefulSet:
			s.statefulSets = append(s.statefulSets, v)
		case *corev1.Service:
			s.services = append(s.services, v)
		case *corev1.ServiceAccount:
			s.accounts = append(s.accounts, v)
		case *corev1.Namespace:
			s.namespaces = append(s.namespaces, v)
		case *policyv1.PodDisruptionBudget:
			s.pdbs = append(s.pdbs, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			s.hpas = append(s.hpas, v)
		case *networkingv1.NetworkPolicy:
			s.policies = append(s.policies, v)
		}
	}
	return s
}

// problems collects messages, each naming its object.
type problems []error

func (p *problems) add(obj, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", obj, fmt.Sprintf(format, args...)))
}

func nameOf(kind string, m metav1.ObjectMeta) string {
	if m.Namespace != "" {
		return kind + " " + m.Namespace + "/" + m.Name
	}
	return kind + " " + m.Name
}

// ValidateSet checks what an API server does not: that the objects of one
// rendered overlay fit together and fit the broker. It expects objects
// that passed ValidateAPI.
func ValidateSet(objs []*Object) []error {
	s := newSet(objs)
	var p problems
	if len(s.statefulSets) != 1 {
		p.add("overlay", "want exactly one StatefulSet (the brokers), found %d", len(s.statefulSets))
		return p
	}
	ss := s.statefulSets[0]
	s.checkStatefulSet(&p, ss)
	for _, svc := range s.services {
		s.checkService(&p, ss, svc)
	}
	if len(s.pdbs) == 0 {
		p.add("overlay", "no PodDisruptionBudget for the brokers")
	}
	for _, pdb := range s.pdbs {
		checkPDB(&p, ss, pdb)
	}
	for _, hpa := range s.hpas {
		checkHPA(&p, ss, hpa)
	}
	if len(s.policies) == 0 {
		p.add("overlay", "no NetworkPolicy for the brokers")
	}
	for _, np := range s.policies {
		checkNetworkPolicy(&p, ss, np)
	}
	s.checkNamespace(&p, ss)
	return p
}

func (s *set) checkStatefulSet(p *problems, ss *appsv1.StatefulSet) {
	name := nameOf("StatefulSet", ss.ObjectMeta)
	pod := &ss.Spec.Template
	podLabels := labels.Set(pod.Labels)

	// The headless Service that gives the pods their DNS names.
	headless := s.service(ss.Namespace, ss.Spec.ServiceName)
	switch {
	case headless == nil:
		p.add(name, "serviceName %q names no Service of the overlay", ss.Spec.ServiceName)
	case headless.Spec.ClusterIP != corev1.ClusterIPNone:
		p.add(name, "serviceName %q names a Service that is not headless (clusterIP: None): pods get no DNS names of their own", ss.Spec.ServiceName)
	case !headless.Spec.PublishNotReadyAddresses:
		p.add(name, "serviceName %q names a Service without publishNotReadyAddresses: true: a broker could not be reached by the others until ready, and it becomes ready only by joining them", ss.Spec.ServiceName)
	case !labels.SelectorFromSet(headless.Spec.Selector).Matches(podLabels) || len(headless.Spec.Selector) == 0:
		p.add(name, "serviceName %q names a Service whose selector %v does not select the pods (labels %v)", ss.Spec.ServiceName, headless.Spec.Selector, pod.Labels)
	}
	if ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		p.add(name, "podManagementPolicy %q: brokers join in any order, use Parallel", ss.Spec.PodManagementPolicy)
	}
	if len(ss.Spec.VolumeClaimTemplates) == 0 {
		p.add(name, "no volumeClaimTemplates: a broker's data would not outlive its pod")
	}

	spec := &pod.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		p.add(name, "automountServiceAccountToken must be false: the broker calls no Kubernetes API")
	}
	if spec.ServiceAccountName != "" && !slices.ContainsFunc(s.accounts, func(a *corev1.ServiceAccount) bool { return a.Name == spec.ServiceAccountName }) {
		p.add(name, "serviceAccountName %q names no ServiceAccount of the overlay", spec.ServiceAccountName)
	}
	checkScheduling(p, name, spec, podLabels)

	c := container(spec, brokerContainer)
	if c == nil {
		p.add(name, "no container named %q", brokerContainer)
		return
	}
	cname := fmt.Sprintf("%s: container %s", name, c.Name)
	if cp := containerPort(c, intstr.FromString(quicPort)); cp == nil || cp.Protocol != corev1.ProtocolUDP {
		p.add(cname, "needs a UDP port named %q (QUIC)", quicPort)
	}
	if cp := containerPort(c, intstr.FromString(adminPort)); cp == nil || cp.Protocol != corev1.ProtocolTCP {
		p.add(cname, "needs a TCP port named %q (admin HTTP)", adminPort)
	}
	checkProbes(p, cname, c)
	env := checkEnv(p, cname, c)
	checkIdentity(p, cname, ss, env)
	checkMounts(p, cname, ss, c, env)
	checkPreStop(p, cname, spec, c, env)
}

// checkScheduling: anti-affinity and spreading must select the brokers
// themselves, or they constrain nothing.
func checkScheduling(p *problems, name string, spec *corev1.PodSpec, podLabels labels.Set) {
	var terms []corev1.PodAffinityTerm
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		terms = append(terms, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	if !slices.ContainsFunc(terms, func(t corev1.PodAffinityTerm) bool { return t.TopologyKey == corev1.LabelHostname }) {
		p.add(name, "no pod anti-affinity over %s: two brokers may land on one node", corev1.LabelHostname)
	}
	for i, t := range terms {
		if !selects(t.LabelSelector, podLabels) {
			p.add(name, "pod anti-affinity term %d (topologyKey %s) does not select the broker pods (labels %v)", i, t.TopologyKey, podLabels)
		}
	}
	if len(spec.TopologySpreadConstraints) == 0 {
		p.add(name, "no topologySpreadConstraints: brokers are not spread over zones")
	}
	for i, t := range spec.TopologySpreadConstraints {
		if !selects(t.LabelSelector, podLabels) {
			p.add(name, "topologySpreadConstraints[%d] (topologyKey %s) does not select the broker pods (labels %v)", i, t.TopologyKey, podLabels)
		}
	}
}

// checkProbes: the kubelet probes the admin port, /healthz for liveness
// and start-up, /readyz for readiness, on ports the container has.
func checkProbes(p *problems, name string, c *corev1.Container) {
	for _, pr := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, healthzPath},
		{"livenessProbe", c.LivenessProbe, healthzPath},
		{"readinessProbe", c.ReadinessProbe, readyzPath},
	} {
		if pr.probe == nil {
			p.add(name, "no %s", pr.kind)
			continue
		}
		h := pr.probe.ProbeHandler
		switch {
		case h.HTTPGet != nil:
			if h.HTTPGet.Path != pr.path {
				p.add(name, "%s path %q: want %s", pr.kind, h.HTTPGet.Path, pr.path)
			}
			checkProbePort(p, name, pr.kind, c, h.HTTPGet.Port, corev1.ProtocolTCP)
		case h.TCPSocket != nil:
			p.add(name, "%s is a TCP check: it passes while the broker is not serving; use httpGet %s", pr.kind, pr.path)
			checkProbePort(p, name, pr.kind, c, h.TCPSocket.Port, corev1.ProtocolTCP)
		case h.GRPC != nil:
			p.add(name, "%s is a gRPC check: the broker has no gRPC health service", pr.kind)
		}
	}
	if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.HTTPGet != nil {
		checkProbePort(p, name, "preStop", c, l.PreStop.HTTPGet.Port, corev1.ProtocolTCP)
	}
}

func checkProbePort(p *problems, name, kind string, c *corev1.Container, port intstr.IntOrString, proto corev1.Protocol) {
	cp := containerPort(c, port)
	switch {
	case cp == nil:
		p.add(name, "%s port %s is not a port of the container (ports: %s)", kind, port.String(), portList(c))
	case cp.Protocol != proto:
		p.add(name, "%s port %s is %s, the probe needs %s", kind, port.String(), cp.Protocol, proto)
	}
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// checkEnv: the kubelet expands $(NAME) only for variables defined
// earlier in the list; a later or unknown one stays as written. It returns
// the environment's literal values (fieldRefs as "fieldRef:PATH").
func checkEnv(p *problems, name string, c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		for _, m := range varRef.FindAllStringSubmatch(e.Value, -1) {
			if _, ok := env[m[1]]; !ok {
				p.add(name, "env %s uses $(%s), which is not defined before it: it would stay as written", e.Name, m[1])
			}
		}
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			env[e.Name] = "fieldRef:" + e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom != nil:
			env[e.Name] = "valueFrom"
		default:
			env[e.Name] = e.Value
		}
	}
	if len(c.EnvFrom) > 0 {
		p.add(name, "envFrom hides which RAFKA_ variables are set: list them in env")
	}
	return env
}

// checkIdentity: broker id = pod name; advertised address and --join by
// the headless Service's per-pod DNS names, the founder (ordinal 0) first.
func checkIdentity(p *problems, name string, ss *appsv1.StatefulSet, env map[string]string) {
	if env["RAFKA_BROKER_ID"] != "fieldRef:metadata.name" {
		p.add(name, "RAFKA_BROKER_ID must come from the pod name (fieldRef metadata.name), got %q", env["RAFKA_BROKER_ID"])
	}
	for v, path := range map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"} {
		if env[v] != "fieldRef:"+path {
			p.add(name, "%s must come from fieldRef %s, got %q", v, path, env[v])
		}
	}
	if env["CLUSTER_DOMAIN"] == "" {
		p.add(name, "CLUSTER_DOMAIN is not set")
	}
	suffix := fmt.Sprintf(".%s.$(POD_NAMESPACE).svc.$(CLUSTER_DOMAIN):%d", ss.Spec.ServiceName, quicContainerPort(ss))
	if want := "$(POD_NAME)" + suffix; env["RAFKA_ADVERTISED_ADDR"] != want {
		p.add(name, "RAFKA_ADVERTISED_ADDR %q: want %q (the pod's name in the headless Service)", env["RAFKA_ADVERTISED_ADDR"], want)
	}
	join := strings.Split(env["RAFKA_JOIN"], ",")
	if want := ss.Name + "-0" + suffix; join[0] != want {
		p.add(name, "RAFKA_JOIN %q: the first address must be the founder, %q", env["RAFKA_JOIN"], want)
	}
	if env["RAFKA_BROKERS"] != env["RAFKA_ADVERTISED_ADDR"] {
		p.add(name, "RAFKA_BROKERS %q (used by rafka commands in the pod, the preStop drain) must be the broker's own advertised address %q", env["RAFKA_BROKERS"], env["RAFKA_ADVERTISED_ADDR"])
	}
}

func quicContainerPort(ss *appsv1.StatefulSet) int32 {
	if c := container(&ss.Spec.Template.Spec, brokerContainer); c != nil {
		if cp := containerPort(c, intstr.FromString(quicPort)); cp != nil {
			return cp.ContainerPort
		}
	}
	return 0
}

// checkMounts: the data directory is a claim from volumeClaimTemplates and
// the TLS files come from a mounted Secret.
func checkMounts(p *problems, name string, ss *appsv1.StatefulSet, c *corev1.Container, env map[string]string) {
	volumes := map[string]*corev1.Volume{}
	for i := range ss.Spec.Template.Spec.Volumes {
		volumes[ss.Spec.Template.Spec.Volumes[i].Name] = &ss.Spec.Template.Spec.Volumes[i]
	}
	claims := map[string]bool{}
	for _, t := range ss.Spec.VolumeClaimTemplates {
		claims[t.Name] = true
	}
	mountOf := func(path string) *corev1.VolumeMount {
		var best *corev1.VolumeMount
		for i, m := range c.VolumeMounts {
			if path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
				if best == nil || len(m.MountPath) > len(best.MountPath) {
					best = &c.VolumeMounts[i]
				}
			}
		}
		return best
	}
	for _, m := range c.VolumeMounts {
		if volumes[m.Name] == nil && !claims[m.Name] {
			p.add(name, "volumeMount %s names neither a volume nor a volumeClaimTemplate", m.Name)
		}
	}
	dataDir := env["RAFKA_DATA_DIR"]
	if m := mountOf(dataDir); dataDir == "" || m == nil || !claims[m.Name] {
		p.add(name, "RAFKA_DATA_DIR %q is not on a volume from volumeClaimTemplates: the data would not outlive the pod", dataDir)
	} else if m.ReadOnly {
		p.add(name, "RAFKA_DATA_DIR %q is mounted read-only", dataDir)
	}
	for _, v := range []string{"RAFKA_TLS_CERT", "RAFKA_TLS_KEY", "RAFKA_TLS_CA"} {
		path := env[v]
		m := mountOf(path)
		if path == "" || m == nil || volumes[m.Name] == nil || volumes[m.Name].Secret == nil {
			p.add(name, "%s %q is not in a mounted Secret", v, path)
		}
	}
}

// checkPreStop: the drain runs before SIGTERM, and both it and the
// broker's shutdown must fit in the grace period.
func checkPreStop(p *problems, name string, spec *corev1.PodSpec, c *corev1.Container, env map[string]string) {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
		p.add(name, "no preStop exec hook: the broker would stop leading its partitions only on SIGTERM")
		return
	}
	cmd := c.Lifecycle.PreStop.Exec.Command
	line := strings.Join(cmd, " ")
	if !strings.HasPrefix(line, drainCommand+" ") {
		p.add(name, "preStop %q: want %s --leaders-only --wait --timeout D", line, drainCommand)
		return
	}
	for _, f := range []string{"--leaders-only", "--wait"} {
		if !slices.Contains(cmd, f) {
			p.add(name, "preStop %q lacks %s", line, f)
		}
	}
	if varRef.MatchString(line) {
		p.add(name, "preStop %q: the kubelet does not expand $(VAR) in hook commands", line)
	}
	drain, ok := flagDuration(cmd, "--timeout")
	if !ok {
		p.add(name, "preStop %q: needs --timeout D (a drain without one could outlast the grace period)", line)
		return
	}
	shutdown, err := time.ParseDuration(env["RAFKA_SHUTDOWN_TIMEOUT"])
	if err != nil {
		p.add(name, "RAFKA_SHUTDOWN_TIMEOUT %q: %v", env["RAFKA_SHUTDOWN_TIMEOUT"], err)
		return
	}
	grace := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
	if spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	}
	if need := drain + shutdown + shutdownMargin; grace < need {
		p.add(name, "terminationGracePeriodSeconds %v is shorter than the preStop drain (%v) plus the broker's shutdown (%v) plus %v: the kubelet would SIGKILL it", grace, drain, shutdown, shutdownMargin)
	}
}

func flagDuration(args []string, flag string) (time.Duration, bool) {
	for i, a := range args {
		v, ok := strings.CutPrefix(a, flag+"=")
		if !ok && a == flag && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			d, err := time.ParseDuration(v)
			return d, err == nil && d > 0
		}
	}
	return 0, false
}

func (s *set) checkService(p *problems, ss *appsv1.StatefulSet, svc *corev1.Service) {
	name := nameOf("Service", svc.ObjectMeta)
	if svc.Namespace != ss.Namespace {
		p.add(name, "is not in the StatefulSet's namespace %q", ss.Namespace)
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(ss.Spec.Template.Labels)) {
		p.add(name, "selector %v does not select the broker pods (labels %v)", svc.Spec.Selector, ss.Spec.Template.Labels)
	}
	c := container(&ss.Spec.Template.Spec, brokerContainer)
	if c == nil {
		return
	}
	for _, sp := range svc.Spec.Ports {
		target := sp.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(sp.Port)
		}
		cp := containerPort(c, target)
		switch {
		case cp == nil:
			p.add(name, "port %s: targetPort %s is not a port of container %s (ports: %s)", sp.Name, target.String(), c.Name, portList(c))
		case cp.Protocol != sp.Protocol:
			p.add(name, "port %s is %s but targets container port %s, which is %s", sp.Name, sp.Protocol, cp.Name, cp.Protocol)
		}
	}
}

func checkPDB(p *problems, ss *appsv1.StatefulSet, pdb *policyv1.PodDisruptionBudget) {
	name := nameOf("PodDisruptionBudget", pdb.ObjectMeta)
	if pdb.Namespace != ss.Namespace || !selectsAll(pdb.Spec.Selector, labels.Set(ss.Spec.Template.Labels)) {
		p.add(name, "selector does not select the broker pods (labels %v)", ss.Spec.Template.Labels)
	}
	// With three replicas per partition, a quorum survives one broker down.
	if mu := pdb.Spec.MaxUnavailable; mu == nil || mu.Type != intstr.Int || mu.IntVal != 1 {
		p.add(name, "maxUnavailable must be 1: a partition with three replicas keeps its quorum with one broker down, not two")
	}
}

func checkHPA(p *problems, ss *appsv1.StatefulSet, hpa *autoscalingv2.HorizontalPodAutoscaler) {
	name := nameOf("HorizontalPodAutoscaler", hpa.ObjectMeta)
	ref := hpa.Spec.ScaleTargetRef
	if ref.Kind != "StatefulSet" || ref.Name != ss.Name || ref.APIVersion != "apps/v1" || hpa.Namespace != ss.Namespace {
		p.add(name, "scaleTargetRef %s %s (%s) is not the brokers' StatefulSet %s", ref.Kind, ref.Name, ref.APIVersion, ss.Name)
	}
	if b := hpa.Spec.Behavior; b == nil || b.ScaleDown == nil || b.ScaleDown.SelectPolicy == nil || *b.ScaleDown.SelectPolicy != autoscalingv2.DisabledPolicySelect {
		p.add(name, "scaleDown must be disabled (behavior.scaleDown.selectPolicy: Disabled): a broker must be drained before it leaves, which an autoscaler does not do")
	}
	if hpa.Spec.MinReplicas != nil && *hpa.Spec.MinReplicas < 3 {
		p.add(name, "minReplicas %d: fewer than three brokers cannot hold three replicas", *hpa.Spec.MinReplicas)
	}
}

func checkNetworkPolicy(p *problems, ss *appsv1.StatefulSet, np *networkingv1.NetworkPolicy) {
	name := nameOf("NetworkPolicy", np.ObjectMeta)
	podLabels := labels.Set(ss.Spec.Template.Labels)
	if np.Namespace != ss.Namespace || !selectsAll(&np.Spec.PodSelector, podLabels) {
		p.add(name, "podSelector does not select the broker pods (labels %v)", podLabels)
		return
	}
	c := container(&ss.Spec.Template.Spec, brokerContainer)
	if c == nil {
		return
	}
	peers := false
	for i, r := range np.Spec.Ingress {
		quic := false
		for _, port := range r.Ports {
			if port.Port == nil {
				continue
			}
			proto := corev1.ProtocolTCP
			if port.Protocol != nil {
				proto = *port.Protocol
			}
			cp := containerPort(c, *port.Port)
			switch {
			case cp == nil:
				p.add(name, "ingress[%d]: port %s is not a port of the broker container (ports: %s)", i, port.Port.String(), portList(c))
			case cp.Protocol != proto:
				p.add(name, "ingress[%d]: port %s is %s here but %s on the container", i, port.Port.String(), proto, cp.Protocol)
			case cp.Name == quicPort:
				quic = true
			}
		}
		for _, from := range r.From {
			if quic && from.NamespaceSelector == nil && from.IPBlock == nil && selectsAll(from.PodSelector, podLabels) {
				peers = true
			}
		}
	}
	if !peers {
		p.add(name, "no ingress rule lets the broker pods reach each other on the %s port: brokers could not replicate", quicPort)
	}
}

// checkNamespace: an overlay that creates its namespace enforces the
// restricted profile the pod template was checked against.
func (s *set) checkNamespace(p *problems, ss *appsv1.StatefulSet) {
	for _, ns := range s.namespaces {
		if ns.Name != ss.Namespace {
			continue
		}
		if lv := ns.Labels[psaEnforceLabel]; lv != "restricted" {
			p.add(nameOf("Namespace", ns.ObjectMeta), "label %s is %q: want restricted", psaEnforceLabel, lv)
		}
		return
	}
}

const psaEnforceLabel = "pod-security.kubernetes.io/enforce"

func (s *set) service(ns, name string) *corev1.Service {
	for _, svc := range s.services {
		if svc.Namespace == ns && svc.Name == name {
			return svc
		}
	}
	return nil
}

func container(spec *corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	return nil
}

// containerPort finds a port by name or number, as the kubelet and
// Services resolve targetPort and probe ports.
func containerPort(c *corev1.Container, port intstr.IntOrString) *corev1.ContainerPort {
	for i, cp := range c.Ports {
		if port.Type == intstr.String && cp.Name == port.StrVal || port.Type == intstr.Int && cp.ContainerPort == port.IntVal {
			return &c.Ports[i]
		}
	}
	return nil
}

func portList(c *corev1.Container) string {
	var s []string
	for _, cp := range c.Ports {
		s = append(s, fmt.Sprintf("%s %d/%s", cp.Name, cp.ContainerPort, cp.Protocol))
	}
	return strings.Join(s, ", ")
}

// selects reports whether a label selector of an affinity term or spread
// constraint matches the labels: there, an empty selector matches nothing.
func selects(sel *metav1.LabelSelector, l labels.Set) bool {
	if sel == nil || len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return false
	}
	return selectsAll(sel, l)
}

// selectsAll is selects for NetworkPolicy and PodDisruptionBudget
// selectors, where an empty selector means every pod of the namespace.
func selectsAll(sel *metav1.LabelSelector, l labels.Set) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(l)
}
