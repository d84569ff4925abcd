package quicnet

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"slices"
	"testing"
	"time"
)

func TestSelfSignedCreatedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	conf1, err := ServerTLSConfig(TLSFiles{DataDir: dir})
	if err != nil {
		t.Fatalf("first ServerTLSConfig: %v", err)
	}
	certPath, keyPath := SelfSignedCertPath(dir), selfSignedKeyPath(dir)
	cert1, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatalf("certificate not written: %v", err)
	}
	key1, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatalf("key not written: %v", err)
	}
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %v, want 0600", perm)
	}

	conf2, err := ServerTLSConfig(TLSFiles{DataDir: dir})
	if err != nil {
		t.Fatalf("second ServerTLSConfig: %v", err)
	}
	cert2, _ := os.ReadFile(certPath)
	key2, _ := os.ReadFile(keyPath)
	if !bytes.Equal(cert1, cert2) || !bytes.Equal(key1, key2) {
		t.Fatal("self-signed pair was regenerated on the second call")
	}
	if !bytes.Equal(conf1.Certificates[0].Certificate[0], conf2.Certificates[0].Certificate[0]) {
		t.Fatal("second config serves a different certificate")
	}
	for _, c := range []*tls.Config{conf1, conf2} {
		if c.MinVersion != tls.VersionTLS13 || !slices.Equal(c.NextProtos, []string{ALPN}) {
			t.Errorf("MinVersion %x NextProtos %v, want TLS 1.3 and [%s]", c.MinVersion, c.NextProtos, ALPN)
		}
	}

	leaf, err := x509.ParseCertificate(conf1.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if min := time.Now().Add(9 * 365 * 24 * time.Hour); leaf.NotAfter.Before(min) {
		t.Errorf("NotAfter %v, want about 10 years ahead", leaf.NotAfter)
	}
	wantDNS := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "localhost" {
		wantDNS = append(wantDNS, h)
	}
	if !slices.Equal(leaf.DNSNames, wantDNS) {
		t.Errorf("DNS SANs %v, want %v", leaf.DNSNames, wantDNS)
	}
	for _, ip := range []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")} {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			t.Errorf("IP SANs %v lack %v", leaf.IPAddresses, ip)
		}
	}
	// A client can trust the certificate by naming it as its CA file.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cert1)
	for _, name := range append(wantDNS, "127.0.0.1", "::1") {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify as %s: %v", name, err)
		}
	}
}

func TestSelfSignedRegeneratedWhenHalfMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := ServerTLSConfig(TLSFiles{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(SelfSignedCertPath(dir))
	if err := os.Remove(SelfSignedCertPath(dir)); err != nil {
		t.Fatal(err)
	}
	if _, err := ServerTLSConfig(TLSFiles{DataDir: dir}); err != nil {
		t.Fatalf("ServerTLSConfig with only a key left: %v", err)
	}
	now, err := os.ReadFile(SelfSignedCertPath(dir))
	if err != nil || bytes.Equal(old, now) {
		t.Fatalf("want a fresh certificate, got err %v, same %v", err, bytes.Equal(old, now))
	}
}

func TestSelfSignedCorruptIsNotReplaced(t *testing.T) {
	dir := t.TempDir()
	if _, err := ServerTLSConfig(TLSFiles{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(selfSignedKeyPath(dir), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ServerTLSConfig(TLSFiles{DataDir: dir}); !errors.Is(err, ErrBadTLSFiles) {
		t.Fatalf("err %v, want ErrBadTLSFiles", err)
	}
	if b, _ := os.ReadFile(selfSignedKeyPath(dir)); string(b) != "garbage" {
		t.Fatal("corrupt key was overwritten")
	}
}

func TestTLSFilesErrors(t *testing.T) {
	dir := t.TempDir()
	missing := dir + "/missing.pem"
	for _, tc := range []struct {
		name string
		f    TLSFiles
		srv  bool
	}{
		{"server cert without key", TLSFiles{CertFile: missing}, true},
		{"server missing files", TLSFiles{CertFile: missing, KeyFile: missing}, true},
		{"server mTLS without CA", TLSFiles{DataDir: dir, RequireClientCert: true}, true},
		{"server missing CA", TLSFiles{DataDir: dir, CAFile: missing}, true},
		{"client key without cert", TLSFiles{KeyFile: missing}, false},
		{"client missing CA", TLSFiles{CAFile: missing}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.srv {
				_, err = ServerTLSConfig(tc.f)
			} else {
				_, err = ClientTLSConfig(tc.f)
			}
			if !errors.Is(err, ErrBadTLSFiles) {
				t.Fatalf("err %v, want ErrBadTLSFiles", err)
			}
		})
	}
}
