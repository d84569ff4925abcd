package main

import "testing"

// TestConnectionFlagNames checks the connection flags every command that
// talks to a broker shares (rafka-bench and the examples use the same).
func TestConnectionFlagNames(t *testing.T) {
	root := newRoot()
	for _, path := range [][]string{{"topic"}, {"produce"}, {"consume"}, {"cluster"}, {"verify"}} {
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		f := cmd.PersistentFlags()
		for name, short := range map[string]string{"brokers": "b", "tls-ca": "", "tls-cert": "", "tls-key": "",
			"insecure-skip-verify": "", "timeout": ""} {
			fl := f.Lookup(name)
			if fl == nil {
				t.Errorf("%v: no --%s", path, name)
				continue
			}
			if fl.Shorthand != short {
				t.Errorf("%v --%s: short -%s, want -%s", path, name, fl.Shorthand, short)
			}
		}
	}
}
