package validate

import (
	"fmt"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Manifest is one object of a rendered overlay.
type Manifest struct {
	// Name says which object it is, for messages: "StatefulSet rafka-dev/rafka".
	Name string
	// YAML is the object as kustomize renders it.
	YAML []byte
}

// Render builds the kustomization in dir as kubectl apply -k would, and
// returns its objects in kustomize's order.
func Render(dir string) ([]Manifest, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []Manifest
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		name := r.GetName()
		if ns := r.GetNamespace(); ns != "" {
			name = ns + "/" + name
		}
		out = append(out, Manifest{Name: r.GetKind() + " " + name, YAML: y})
	}
	return out, nil
}
