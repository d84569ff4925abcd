package validate

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
)

// flagDef matches pflag's definitions: StringVar, StringSliceVarP, Bool,
// DurationVar, ... whose first string argument is the flag's name.
var flagDef = regexp.MustCompile(`^(String|StringSlice|Bool|Int|Int64|Uint64|Duration|Float64)(Var)?P?$`)

// Flags returns the names of every flag the rafka command defines, read
// from its Go source in dir (cmd/rafka) rather than from --help text.
func Flags(dir string) (map[string]bool, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	flags := map[string]bool{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !flagDef.MatchString(sel.Sel.Name) {
				return true
			}
			for _, arg := range call.Args {
				if lit, ok := arg.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if name, err := strconv.Unquote(lit.Value); err == nil {
						flags[name] = true
					}
					break
				}
			}
			return true
		})
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("no flag definitions found in %s", dir)
	}
	return flags, nil
}

// envName is cmd/rafka's mapping of a flag to its environment variable:
// RAFKA_, then the name in upper case with dashes as underscores.
func envName(flag string) string {
	return "RAFKA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// BrokerEnv checks that every RAFKA_ variable of the broker container names
// a flag of the rafka command: a misspelt one would be ignored silently.
func BrokerEnv(ss *appsv1.StatefulSet, flags map[string]bool) []error {
	known := map[string]bool{}
	for f := range flags {
		known[envName(f)] = true
	}
	c := container(&ss.Spec.Template.Spec, brokerContainer)
	if c == nil {
		return []error{fmt.Errorf("%s: no container named %q", nameOf("StatefulSet", ss.ObjectMeta), brokerContainer)}
	}
	var errs []error
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "RAFKA_") && !known[e.Name] {
			var names []string
			for n := range known {
				names = append(names, n)
			}
			sort.Strings(names)
			errs = append(errs, fmt.Errorf("%s: container %s: env %s is no flag of rafka (RAFKA_<FLAG>: %s)", nameOf("StatefulSet", ss.ObjectMeta), c.Name, e.Name, strings.Join(names, ", ")))
		}
	}
	return errs
}
