package main_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// rafka runs the rafka binary in dir and returns stdout, stderr and the
// exit code.
func rafka(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(rafkaBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RAFKA_FORCE=true", "RAFKA_DAYS=1") // ignored by rafka certs
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func mustRafka(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errs, code := rafka(t, dir, args...)
	if code != 0 {
		t.Fatalf("rafka %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	return out
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %04o, want %04o", path, fi.Mode().Perm(), want)
	}
}

func TestCertsCommands(t *testing.T) {
	dir := t.TempDir()
	mustRafka(t, dir, "certs", "create-ca", "--out", "certs")
	mustRafka(t, dir, "certs", "create-broker", "--ca-dir", "certs", "--out", "certs/b1", "--host", "127.0.0.1", "--host", "localhost")
	mustRafka(t, dir, "certs", "create-client", "--ca-dir", "certs", "--out", "certs/alice", "--name", "alice", "--days", "30")
	for path, mode := range map[string]os.FileMode{
		"certs/ca.pem": 0o644, "certs/ca-key.pem": 0o600,
		"certs/b1/cert.pem": 0o644, "certs/b1/key.pem": 0o600,
		"certs/alice/cert.pem": 0o644, "certs/alice/key.pem": 0o600,
	} {
		wantMode(t, filepath.Join(dir, path), mode)
	}

	out := mustRafka(t, dir, "certs", "inspect", "certs/ca.pem", "certs/b1/cert.pem", "certs/alice/cert.pem")
	for _, want := range []string{
		"subject:   CN=Rafka cluster CA,O=Rafka",
		"(self-signed)",
		"CA:        yes, path length 0",
		"usage:     certificate sign, CRL sign",
		"subject:   CN=127.0.0.1",
		"SANs:      DNS:localhost, IP:127.0.0.1",
		"ext usage: serverAuth, clientAuth",
		"role:      broker",
		"subject:   CN=alice",
		"ext usage: clientAuth\n",
		`role:      client, principal "alice"`,
		"valid, expires in 30 days",
		"valid, expires in 365 days",
		"valid, expires in 3650 days",
		"key:       ECDSA P-256",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}

	// Existing files are kept without --force (RAFKA_FORCE is ignored).
	before, _ := os.ReadFile(filepath.Join(dir, "certs/ca-key.pem"))
	_, errs, code := rafka(t, dir, "certs", "create-ca", "--out", "certs")
	if code != 1 || !strings.Contains(errs, "already exists") || !strings.Contains(errs, "--force") {
		t.Errorf("create-ca over an existing CA: exit %d, %s", code, errs)
	}
	_, errs, code = rafka(t, dir, "certs", "create-client", "--ca-dir", "certs", "--out", "certs/alice", "--name", "alice")
	if code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("create-client over existing files: exit %d, %s", code, errs)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "certs/ca-key.pem")); !bytes.Equal(before, after) {
		t.Fatal("CA key replaced without --force")
	}
	mustRafka(t, dir, "certs", "create-client", "--ca-dir", "certs", "--out", "certs/alice", "--name", "alice", "--force")

	// A CA key that does not belong to the certificate.
	mustRafka(t, dir, "certs", "create-ca", "--out", "other")
	if err := os.Rename(filepath.Join(dir, "other/ca-key.pem"), filepath.Join(dir, "certs/ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"mismatched CA key", []string{"create-client", "--ca-dir", "certs", "--out", "bob", "--name", "bob"}, 1, "does not match"},
		{"missing CA dir", []string{"create-client", "--ca-dir", "nowhere", "--out", "bob", "--name", "bob"}, 2, "rafka certs create-ca --out nowhere"},
		{"no --ca-dir", []string{"create-client", "--out", "bob", "--name", "bob"}, 2, "--ca-dir"},
		{"host with a port", []string{"create-broker", "--ca-dir", "other", "--out", "b2", "--host", "127.0.0.1:9092"}, 2, "without a port"},
		{"host not a DNS name", []string{"create-broker", "--ca-dir", "other", "--out", "b2", "--host", "b_2"}, 2, `bad host "b_2"`},
		{"no --host", []string{"create-broker", "--ca-dir", "other", "--out", "b2"}, 2, "--host"},
		{"client without name", []string{"create-client", "--ca-dir", "other", "--out", "b2"}, 2, "--name"},
		{"no --out", []string{"create-ca"}, 2, "--out"},
		{"zero days", []string{"create-ca", "--out", "x", "--days", "0"}, 2, "--days 0"},
		{"outlives the CA", []string{"create-client", "--ca-dir", "short", "--out", "b2", "--name", "b", "--days", "11"}, 2, "after its CA"},
		{"inspect a key", []string{"inspect", "certs/b1/key.pem"}, 1, "private key, no certificate"},
		{"inspect a missing file", []string{"inspect", "nothing.pem"}, 1, "no such file"},
	} {
		if tc.name == "outlives the CA" {
			mustRafka(t, dir, "certs", "create-ca", "--out", "short", "--days", "10")
		}
		_, errs, code := rafka(t, dir, append([]string{"certs"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", tc.name, code, errs, tc.code, tc.want)
		}
	}
	for _, p := range []string{"bob", "b2", "x"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s created by a failed command", p)
		}
	}
}

// TestServeWithIssuedCerts runs `rafka serve` with the --tls-* flags on
// files of `rafka certs` and talks to it with client certificates.
func TestServeWithIssuedCerts(t *testing.T) {
	dir := t.TempDir()
	mustRafka(t, dir, "certs", "create-ca", "--out", "certs")
	mustRafka(t, dir, "certs", "create-ca", "--out", "rogue")
	mustRafka(t, dir, "certs", "create-broker", "--ca-dir", "certs", "--out", "certs/b1", "--host", "127.0.0.1", "--host", "localhost")
	mustRafka(t, dir, "certs", "create-client", "--ca-dir", "certs", "--out", "certs/alice", "--name", "alice")
	mustRafka(t, dir, "certs", "create-client", "--ca-dir", "rogue", "--out", "rogue/mallory", "--name", "mallory")
	p := func(rel string) string { return filepath.Join(dir, rel) }

	s := startServer(t, t.TempDir(), "--tls-cert", p("certs/b1/cert.pem"), "--tls-key", p("certs/b1/key.pem"),
		"--tls-ca", p("certs/ca.pem"), "--tls-require-client-cert")
	client := func(args ...string) (string, string, int) {
		t.Helper()
		return rafka(t, dir, append(args, "--brokers", s.addr, "--timeout", "5s")...)
	}
	alice := []string{"--tls-ca", "certs/ca.pem", "--tls-cert", "certs/alice/cert.pem", "--tls-key", "certs/alice/key.pem"}
	if out, errs, code := client(append([]string{"topic", "create", "orders"}, alice...)...); code != 0 {
		t.Fatalf("alice: exit %d\n%s%s", code, out, errs)
	}
	if out, errs, code := client(append([]string{"topic", "list"}, alice...)...); code != 0 || !strings.Contains(out, "orders") {
		t.Fatalf("alice: exit %d\n%s%s", code, out, errs)
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"client certificate of another CA", []string{"--tls-ca", "certs/ca.pem", "--tls-cert", "rogue/mallory/cert.pem", "--tls-key", "rogue/mallory/key.pem"}},
		{"no client certificate", []string{"--tls-ca", "certs/ca.pem"}},
		{"client trusting another CA", []string{"--tls-ca", "rogue/ca.pem", "--tls-cert", "certs/alice/cert.pem", "--tls-key", "certs/alice/key.pem"}},
	} {
		out, errs, code := client(append([]string{"topic", "list"}, tc.args...)...)
		t.Logf("%s: exit %d: %s", tc.name, code, errs)
		if code == 0 {
			t.Errorf("%s: accepted:\n%s", tc.name, out)
		} else if !strings.Contains(errs, "CRYPTO_ERROR") {
			t.Errorf("%s: exit %d, stderr %q; want a TLS error", tc.name, code, errs)
		}
	}
	s.stop()
}
