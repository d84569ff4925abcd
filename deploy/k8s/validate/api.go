package validate

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	podutil "k8s.io/kubernetes/pkg/api/pod"
	"k8s.io/kubernetes/pkg/apis/apps"
	_ "k8s.io/kubernetes/pkg/apis/apps/install" // apps/v1 in legacyscheme
	appsvalidation "k8s.io/kubernetes/pkg/apis/apps/validation"
	"k8s.io/kubernetes/pkg/apis/autoscaling"
	_ "k8s.io/kubernetes/pkg/apis/autoscaling/install" // autoscaling/v2
	autoscalingvalidation "k8s.io/kubernetes/pkg/apis/autoscaling/validation"
	"k8s.io/kubernetes/pkg/apis/core"
	_ "k8s.io/kubernetes/pkg/apis/core/install" // v1
	corevalidation "k8s.io/kubernetes/pkg/apis/core/validation"
	"k8s.io/kubernetes/pkg/apis/networking"
	_ "k8s.io/kubernetes/pkg/apis/networking/install" // networking.k8s.io/v1
	networkingvalidation "k8s.io/kubernetes/pkg/apis/networking/validation"
	"k8s.io/kubernetes/pkg/apis/policy"
	_ "k8s.io/kubernetes/pkg/apis/policy/install" // policy/v1
	policyvalidation "k8s.io/kubernetes/pkg/apis/policy/validation"
	"k8s.io/kubernetes/pkg/capabilities"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

// Object is a manifest decoded into the Kubernetes API's types.
type Object struct {
	Name string
	GVK  schema.GroupVersionKind
	// Versioned is the object as written (apps/v1, ...), with the API's
	// defaults applied.
	Versioned runtime.Object
}

func init() {
	// Privileged containers are refused unless the API server runs with
	// --allow-privileged, as kubeadm, kind and the managed offerings set
	// it; the brokers' namespaces refuse them anyway (restricted).
	capabilities.Initialize(capabilities.Capabilities{AllowPrivileged: true})
}

// strictCodecs decode like an API server asked for fieldValidation=Strict:
// unknown and duplicate fields are errors.
var strictCodecs = serializer.NewCodecFactory(legacyscheme.Scheme, serializer.EnableStrict)

// Decode decodes one object strictly into its versioned API type and
// applies the API's defaults. Kinds the pinned API does not know are errors.
func Decode(name string, y []byte) (*Object, error) {
	obj, gvk, err := strictCodecs.UniversalDeserializer().Decode(y, nil, nil)
	if err != nil {
		// A strict decoding error comes with the decoded object; the
		// manifest is wrong all the same.
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	legacyscheme.Scheme.Default(obj)
	return &Object{Name: name, GVK: *gvk, Versioned: obj}, nil
}

// ValidateAPI runs the API server's validation of o's kind on create,
// after converting it to the internal version as the API server does, and
// the restricted Pod Security Standard on pod templates. It returns one
// error per problem, each naming the object and the field.
func ValidateAPI(o *Object) []error {
	internalGV := schema.GroupVersion{Group: o.GVK.Group, Version: runtime.APIVersionInternal}
	in, err := legacyscheme.Scheme.ConvertToVersion(o.Versioned.DeepCopyObject(), internalGV)
	if err != nil {
		return []error{fmt.Errorf("%s: converting to the internal version: %w", o.Name, err)}
	}
	var errs field.ErrorList
	switch obj := in.(type) {
	case *apps.StatefulSet:
		// As the registry's statefulSetStrategy.Validate.
		errs = appsvalidation.ValidateStatefulSet(obj, podutil.GetValidationOptionsFromPodTemplate(&obj.Spec.Template, nil))
	case *apps.DaemonSet:
		errs = appsvalidation.ValidateDaemonSet(obj, podutil.GetValidationOptionsFromPodTemplate(&obj.Spec.Template, nil))
	case *core.Service:
		allocate(obj)
		errs = corevalidation.ValidateServiceCreate(obj)
	case *core.ServiceAccount:
		errs = corevalidation.ValidateServiceAccount(obj)
	case *core.Namespace:
		errs = corevalidation.ValidateNamespace(obj)
	case *core.Secret:
		errs = corevalidation.ValidateSecret(obj)
	case *core.ConfigMap:
		errs = corevalidation.ValidateConfigMap(obj)
	case *policy.PodDisruptionBudget:
		errs = policyvalidation.ValidatePodDisruptionBudget(obj, policyvalidation.PodDisruptionBudgetValidationOptions{})
	case *autoscaling.HorizontalPodAutoscaler:
		// The options of the registry's create for a scale target other
		// than a ReplicationController, without HPAScaleToZero.
		errs = autoscalingvalidation.ValidateHorizontalPodAutoscaler(obj, autoscalingvalidation.HorizontalPodAutoscalerSpecValidationOptions{
			MinReplicasLowerBound:           1,
			ScaleTargetRefValidationOptions: autoscalingvalidation.CrossVersionObjectReferenceValidationOptions{},
			ObjectMetricsValidationOptions:  autoscalingvalidation.CrossVersionObjectReferenceValidationOptions{AllowEmptyAPIGroup: true},
		})
	case *networking.NetworkPolicy:
		errs = networkingvalidation.ValidateNetworkPolicy(obj, networkingvalidation.ValidationOptionsForNetworking(obj, nil))
	default:
		return []error{fmt.Errorf("%s: no validation for %s here: add it to ValidateAPI", o.Name, o.GVK)}
	}
	var out []error
	for _, e := range errs {
		out = append(out, fmt.Errorf("%s: %s", o.Name, e.Error()))
	}
	if spec, meta := podTemplateOf(o.Versioned); spec != nil {
		out = append(out, restricted(o.Name, meta, spec)...)
	}
	return out
}

// allocate does what the Service REST storage does before validation on
// create, in a single-stack IPv4 cluster: it picks the IP family and fills
// spec.clusterIPs from spec.clusterIP, allocating an address from the
// service range for a ClusterIP Service that names none ("None", headless,
// stays as it is).
func allocate(svc *core.Service) {
	if svc.Spec.Type == core.ServiceTypeExternalName {
		return
	}
	if svc.Spec.IPFamilyPolicy == nil {
		single := core.IPFamilyPolicySingleStack
		svc.Spec.IPFamilyPolicy = &single
	}
	if len(svc.Spec.IPFamilies) == 0 {
		svc.Spec.IPFamilies = []core.IPFamily{core.IPv4Protocol}
	}
	if svc.Spec.ClusterIP == "" {
		svc.Spec.ClusterIP = "10.96.0.10" // any free address of the range
	}
	if len(svc.Spec.ClusterIPs) == 0 {
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	}
}

// psaEvaluator holds the admission plugin's checks of every level.
var psaEvaluator = func() psapolicy.Evaluator {
	e, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks())
	if err != nil {
		panic("BUG: pod security checks: " + err.Error())
	}
	return e
}()

// restricted checks a pod template against the latest "restricted" Pod
// Security Standard, which the overlays' namespaces enforce.
func restricted(name string, meta *corev1.PodTemplateSpec, spec *corev1.PodSpec) []error {
	var out []error
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	for _, r := range psaEvaluator.EvaluatePod(lv, &meta.ObjectMeta, spec) {
		if !r.Allowed {
			out = append(out, fmt.Errorf("%s: pod template violates the restricted Pod Security Standard: %s (%s)", name, r.ForbiddenReason, r.ForbiddenDetail))
		}
	}
	return out
}
