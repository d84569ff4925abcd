package main

import "testing"

// TestConnectionFlagNames checks that rafka-bench names its connection
// flags as the rafka command does.
func TestConnectionFlagNames(t *testing.T) {
	f := newRoot().PersistentFlags()
	for name, short := range map[string]string{"brokers": "b", "tls-ca": "", "insecure-skip-verify": ""} {
		fl := f.Lookup(name)
		if fl == nil {
			t.Errorf("no --%s", name)
			continue
		}
		if fl.Shorthand != short {
			t.Errorf("--%s: short -%s, want -%s", name, fl.Shorthand, short)
		}
	}
	for _, old := range []string{"ca-file", "insecure"} {
		if f.Lookup(old) != nil {
			t.Errorf("--%s is still defined", old)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	root := newRoot()
	if root.Version == "" {
		t.Fatal("no --version")
	}
	if cmd, _, err := root.Find([]string{"version"}); err != nil || cmd.Name() != "version" {
		t.Fatalf("no version command: %v", err)
	}
}
