package main_test

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"runtime"
	"testing"
)

func TestVersion(t *testing.T) {
	line := regexp.MustCompile(`^rafka \S+ \(commit \S+, go1\.\d+\S*\)\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := exec.Command(rafkaBin, args...).Output()
		if err != nil {
			t.Fatalf("rafka %v: %v", args, err)
		}
		if !line.Match(out) {
			t.Fatalf("rafka %v printed %q", args, out)
		}
	}
	out, err := exec.Command(rafkaBin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version   string `json:"version"`
		Commit    string `json:"commit"`
		GoVersion string `json:"go_version"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.Version == "" || v.Commit == "" || v.GoVersion != runtime.Version() {
		t.Fatalf("version --json: %q (%v)", out, err)
	}
}
