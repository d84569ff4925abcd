package quicnet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// mustCA creates a CA in dir/name and returns it loaded.
func mustCA(t *testing.T, dir, name string, o CertOptions) *CA {
	t.Helper()
	o.Name = name
	p, err := NewCA(o)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	caDir := filepath.Join(dir, name)
	if err := WritePair(caDir, CACertFileName, CAKeyFileName, p, false); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(caDir)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	return ca
}

// files is a certificate and key written to disk.
type files struct{ cert, key string }

// writeTo writes p into dir/name and returns the paths.
func writeTo(t *testing.T, dir, name string, p PEMPair, err error) files {
	t.Helper()
	if err != nil {
		t.Fatalf("issue %s: %v", name, err)
	}
	d := filepath.Join(dir, name)
	if err := WritePair(d, CertFileName, KeyFileName, p, false); err != nil {
		t.Fatal(err)
	}
	return files{filepath.Join(d, CertFileName), filepath.Join(d, KeyFileName)}
}

func parseLeaf(t *testing.T, p PEMPair) *x509.Certificate {
	t.Helper()
	c, err := parseCertPEM(p.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssuedCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir, "cluster", CertOptions{})
	now := time.Now()

	if ca.Cert.Subject.CommonName != "cluster" || !ca.Cert.IsCA || !ca.Cert.MaxPathLenZero || ca.Cert.MaxPathLen != 0 {
		t.Errorf("CA subject %v IsCA %v MaxPathLen %d (zero %v), want a CA with path length 0",
			ca.Cert.Subject, ca.Cert.IsCA, ca.Cert.MaxPathLen, ca.Cert.MaxPathLenZero)
	}
	if ca.Cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA key usage %b, want cert sign and CRL sign", ca.Cert.KeyUsage)
	}
	if d := ca.Cert.NotAfter.Sub(now); d < DefaultCAValidity-time.Minute || d > DefaultCAValidity+time.Minute {
		t.Errorf("CA valid for %v, want %v", d, DefaultCAValidity)
	}

	bp, err := ca.IssueBroker(CertOptions{Hosts: []string{"127.0.0.1", "Broker-1.Example.com.", "::1", "localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	broker := parseLeaf(t, bp)
	if broker.Subject.CommonName != "127.0.0.1" {
		t.Errorf("broker CN %q, want the first host", broker.Subject.CommonName)
	}
	if !slices.Equal(broker.DNSNames, []string{"broker-1.example.com", "localhost"}) {
		t.Errorf("broker DNS SANs %v", broker.DNSNames)
	}
	if len(broker.IPAddresses) != 2 || !broker.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !broker.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("broker IP SANs %v", broker.IPAddresses)
	}
	if !slices.Equal(broker.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) || !IsBrokerCert(broker) {
		t.Errorf("broker EKUs %v, want serverAuth and clientAuth", broker.ExtKeyUsage)
	}
	if d := broker.NotAfter.Sub(now); d < DefaultCertValidity-time.Minute || d > DefaultCertValidity+time.Minute {
		t.Errorf("broker valid for %v, want %v", d, DefaultCertValidity)
	}
	if !broker.NotBefore.Before(now) {
		t.Errorf("NotBefore %v is not before issue (%v)", broker.NotBefore, now)
	}

	cp, err := ca.IssueClient(CertOptions{Name: "alice", Validity: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	client := parseLeaf(t, cp)
	if client.Subject.CommonName != "alice" || len(client.DNSNames)+len(client.IPAddresses) != 0 {
		t.Errorf("client subject %v SANs %v %v", client.Subject, client.DNSNames, client.IPAddresses)
	}
	if !slices.Equal(client.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || IsBrokerCert(client) {
		t.Errorf("client EKUs %v, want clientAuth only", client.ExtKeyUsage)
	}
	if d := client.NotAfter.Sub(now); d < 47*time.Hour || d > 49*time.Hour {
		t.Errorf("client valid for %v, want 48h", d)
	}

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	serials := map[string]bool{ca.Cert.SerialNumber.String(): true}
	for _, c := range []*x509.Certificate{broker, client} {
		if c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Errorf("%s: IsCA %v key usage %b", c.Subject.CommonName, c.IsCA, c.KeyUsage)
		}
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", c.Subject.CommonName, c.PublicKey)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s does not verify against its CA: %v", c.Subject.CommonName, err)
		}
		if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 || serials[c.SerialNumber.String()] {
			t.Errorf("%s: serial %v, want a fresh positive 128-bit number", c.Subject.CommonName, c.SerialNumber)
		}
		serials[c.SerialNumber.String()] = true
	}
	// Path length 0: a certificate the CA issued cannot sign another.
	if _, err := ParseCA(bp.Cert, bp.Key); !errors.Is(err, ErrNotCA) {
		t.Errorf("ParseCA(broker certificate): %v, want ErrNotCA", err)
	}
}

func TestCAErrors(t *testing.T) {
	dir := t.TempDir()
	a, err := NewCA(CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewCA(CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCA(a.Cert, b.Key); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("CA with another CA's key: %v, want ErrKeyMismatch", err)
	}
	if _, err := ParseCA(a.Cert, []byte("garbage")); !errors.Is(err, ErrBadTLSFiles) {
		t.Errorf("CA with a garbage key: %v, want ErrBadTLSFiles", err)
	}
	if _, err := ParseCA([]byte("garbage"), a.Key); !errors.Is(err, ErrBadTLSFiles) {
		t.Errorf("garbage CA certificate: %v, want ErrBadTLSFiles", err)
	}
	if _, err := LoadCA(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadCA(missing dir): %v, want fs.ErrNotExist", err)
	}
	if err := WritePair(filepath.Join(dir, "mixed"), CACertFileName, CAKeyFileName, PEMPair{Cert: a.Cert, Key: b.Key}, false); err != nil {
		t.Fatal(err)
	}
	_, err = LoadCA(filepath.Join(dir, "mixed"))
	if !errors.Is(err, ErrKeyMismatch) || !strings.Contains(err.Error(), CAKeyFileName) {
		t.Errorf("LoadCA(mismatched key): %v, want ErrKeyMismatch naming the file", err)
	}
}

func TestIssueOptionErrors(t *testing.T) {
	ca := mustCA(t, t.TempDir(), "short-lived", CertOptions{Validity: 30 * 24 * time.Hour})
	for _, tc := range []struct {
		name   string
		issue  func() (PEMPair, error)
		target error
	}{
		{"client without name", func() (PEMPair, error) { return ca.IssueClient(CertOptions{}) }, ErrBadCertOptions},
		{"client with hosts", func() (PEMPair, error) { return ca.IssueClient(CertOptions{Name: "a", Hosts: []string{"x"}}) }, ErrBadCertOptions},
		{"broker without hosts", func() (PEMPair, error) { return ca.IssueBroker(CertOptions{}) }, ErrBadCertOptions},
		{"broker with a port", func() (PEMPair, error) { return ca.IssueBroker(CertOptions{Hosts: []string{"127.0.0.1:9092"}}) }, ErrBadHost},
		{"outlives the CA", func() (PEMPair, error) { return ca.IssueClient(CertOptions{Name: "a", Validity: 31 * 24 * time.Hour}) }, ErrBadCertOptions},
		{"negative validity", func() (PEMPair, error) { return ca.IssueClient(CertOptions{Name: "a", Validity: -time.Hour}) }, ErrBadCertOptions},
		{"long name", func() (PEMPair, error) { return ca.IssueClient(CertOptions{Name: strings.Repeat("a", 65)}) }, ErrBadCertOptions},
		{"control character", func() (PEMPair, error) { return ca.IssueClient(CertOptions{Name: "a\nb"}) }, ErrBadCertOptions},
		{"CA with hosts", func() (PEMPair, error) { return NewCA(CertOptions{Hosts: []string{"x"}}) }, ErrBadCertOptions},
	} {
		if _, err := tc.issue(); !errors.Is(err, tc.target) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.target)
		}
	}
}

func TestIssueDefaultsAndExpiredCA(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir, "cluster", CertOptions{})
	long := strings.Repeat("a", 60) + ".example.com"
	for host, want := range map[string]string{"*.rafka.example.com": "rafka.example.com", long: "rafka broker", "::1": "::1"} {
		p, err := ca.IssueBroker(CertOptions{Hosts: []string{host}})
		if err != nil {
			t.Fatalf("IssueBroker(%s): %v", host, err)
		}
		if cn := parseLeaf(t, p).Subject.CommonName; cn != want {
			t.Errorf("host %s: CN %q, want %q", host, cn, want)
		}
	}
	old := mustCA(t, dir, "old", CertOptions{NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	if _, err := old.IssueClient(CertOptions{Name: "a", Validity: time.Hour}); !errors.Is(err, ErrBadCertOptions) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("issue from an expired CA: %v, want ErrBadCertOptions saying it expired", err)
	}
}

func TestParseHost(t *testing.T) {
	for _, tc := range []struct {
		in  string
		ip  string
		dns string
	}{
		{"127.0.0.1", "127.0.0.1", ""},
		{"::1", "::1", ""},
		{"2001:db8::7", "2001:db8::7", ""},
		{"localhost", "", "localhost"},
		{"Rafka-0.rafka.NS.svc.cluster.local.", "", "rafka-0.rafka.ns.svc.cluster.local"},
		{"*.rafka.example.com", "", "*.rafka.example.com"},
		{"b1", "", "b1"},
	} {
		ip, dns, err := ParseHost(tc.in)
		if err != nil {
			t.Errorf("ParseHost(%q): %v", tc.in, err)
			continue
		}
		if (tc.ip == "") != (ip == nil) || (ip != nil && !ip.Equal(net.ParseIP(tc.ip))) || dns != tc.dns {
			t.Errorf("ParseHost(%q) = %v, %q; want %s, %q", tc.in, ip, dns, tc.ip, tc.dns)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:9092", "localhost:9092", "[::1]", "[::1]:9092", "fe80::1%eth0",
		"a..b", "-a.b", "a-.b", "a_b", "*.com", "a.*.b", "**.a.b", "http://x", "a b", strings.Repeat("a", 64) + ".b",
		strings.Repeat("abcdefgh.", 29) + "ab", "\x00"} {
		if ip, dns, err := ParseHost(bad); !errors.Is(err, ErrBadHost) {
			t.Errorf("ParseHost(%q) = %v, %q, %v; want ErrBadHost", bad, ip, dns, err)
		}
	}
}

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::1", "localhost", "*.a.b", "a:1", "[::1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, dns, err := ParseHost(s)
		if err != nil {
			return
		}
		if (ip == nil) == (dns == "") {
			t.Fatalf("ParseHost(%q) = %v, %q: want exactly one", s, ip, dns)
		}
		if dns != "" {
			// What it accepts, x509 writes and Go's verifier can match.
			if len(dns) > 253 || strings.ToLower(dns) != dns {
				t.Fatalf("ParseHost(%q) = %q", s, dns)
			}
		}
	})
}

func TestWritePair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "b1")
	p1 := PEMPair{Cert: []byte("cert 1\n"), Key: []byte("key 1\n")}
	p2 := PEMPair{Cert: []byte("cert 2\n"), Key: []byte("key 2\n")}
	if err := WritePair(dir, CertFileName, KeyFileName, p1, false); err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName)
	for path, want := range map[string]os.FileMode{dir: 0o700 | fs.ModeDir, certPath: 0o644, keyPath: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	check := func(wantCert, wantKey string) {
		t.Helper()
		c, _ := os.ReadFile(certPath)
		k, _ := os.ReadFile(keyPath)
		if string(c) != wantCert || string(k) != wantKey {
			t.Fatalf("files hold %q, %q; want %q, %q", c, k, wantCert, wantKey)
		}
	}
	if err := WritePair(dir, CertFileName, KeyFileName, p2, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v, want fs.ErrExist", err)
	}
	check("cert 1\n", "key 1\n")

	// Only one of the two present: nothing is written either.
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	if err := WritePair(dir, CertFileName, KeyFileName, p2, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("write over a lone certificate: %v, want fs.ErrExist", err)
	}
	if _, err := os.Stat(keyPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("key written although the certificate exists: %v", err)
	}

	if err := WritePair(dir, CertFileName, KeyFileName, p2, true); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	check("cert 2\n", "key 2\n")
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode() != 0o600 {
		t.Fatalf("replaced key: %v, %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want the two files (no temporary left)", len(entries))
	}
}

// handshake dials srv with clientConf (to addr, or srv's own address) and
// makes one round trip. TLS 1.3: a server rejecting the client certificate
// shows in Dial or in the first round trip.
func handshake(t *testing.T, addr string, clientConf *tls.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Dial(ctx, addr, clientConf, Config{})
	if err != nil {
		return err
	}
	defer conn.CloseWithError(CodeNormal, "")
	resp, err := roundTrip(ctx, conn, []byte("ping"))
	if err == nil && string(resp) != "ping" {
		t.Fatalf("echo %q", resp)
	}
	return err
}

// wantRefused checks that err is a TLS alert whose message holds want.
func wantRefused(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted", what)
		return
	}
	if _, ok := errors.AsType[*quic.TransportError](err); !ok || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v, want a *quic.TransportError (TLS alert) with %q", what, err, want)
	}
}

// presenting returns conf presenting the certificate of files whatever CAs
// the server asks for (Go's client otherwise sends none that does not
// chain to one of them), so that the server's verification is what
// refuses it.
func presenting(t *testing.T, conf *tls.Config, f files) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		t.Fatal(err)
	}
	conf = conf.Clone()
	conf.Certificates = nil
	conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return conf
}

// TestIssuedCertsWithBrokerTLS runs a server configured as `rafka serve
// --tls-cert --tls-key --tls-ca --tls-require-client-cert` with issued
// files, and clients configured as the rafka CLI's --tls-* flags.
func TestIssuedCertsWithBrokerTLS(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir, "cluster", CertOptions{})
	rogue := mustCA(t, dir, "rogue", CertOptions{})
	caFile := filepath.Join(dir, "cluster", CACertFileName)
	rogueCAFile := filepath.Join(dir, "rogue", CACertFileName)

	p, err := ca.IssueBroker(CertOptions{Hosts: []string{"127.0.0.1", "localhost"}})
	b1 := writeTo(t, dir, "b1", p, err)
	p, err = ca.IssueClient(CertOptions{Name: "alice"})
	alice := writeTo(t, dir, "alice", p, err)
	p, err = rogue.IssueClient(CertOptions{Name: "mallory"})
	mallory := writeTo(t, dir, "mallory", p, err)
	p, err = ca.IssueClient(CertOptions{Name: "old", NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	expired := writeTo(t, dir, "expired", p, err)
	// A certificate of the right CA for server authentication only.
	p, err = ca.issue(&x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, CertOptions{Name: "server-only"})
	serverOnly := writeTo(t, dir, "server-only", p, err)

	serverConf, err := ServerTLSConfig(TLSFiles{CertFile: b1.cert, KeyFile: b1.key, CAFile: caFile, RequireClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverConf, Config{}, echo)
	addr := srv.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	client := func(f TLSFiles) *tls.Config {
		t.Helper()
		c, err := ClientTLSConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("client certificate of the CA", func(t *testing.T) {
		if err := handshake(t, addr, client(TLSFiles{CAFile: caFile, CertFile: alice.cert, KeyFile: alice.key})); err != nil {
			t.Fatalf("refused: %v", err)
		}
		if err := handshake(t, net.JoinHostPort("localhost", port), client(TLSFiles{CAFile: caFile, CertFile: alice.cert, KeyFile: alice.key})); err != nil {
			t.Fatalf("by name localhost: %v", err)
		}
	})
	t.Run("broker certificate as a client", func(t *testing.T) {
		if err := handshake(t, addr, client(TLSFiles{CAFile: caFile, CertFile: b1.cert, KeyFile: b1.key})); err != nil {
			t.Fatalf("refused: %v", err)
		}
	})
	t.Run("client certificate of another CA", func(t *testing.T) {
		wantRefused(t, "rogue client", handshake(t, addr, presenting(t, client(TLSFiles{CAFile: caFile}), mallory)), "(remote): tls: unknown certificate authority")
		// Without forcing it, Go's client does not even send it.
		wantRefused(t, "rogue client", handshake(t, addr, client(TLSFiles{CAFile: caFile, CertFile: mallory.cert, KeyFile: mallory.key})), "(remote): tls: certificate required")
	})
	t.Run("no client certificate", func(t *testing.T) {
		wantRefused(t, "anonymous client", handshake(t, addr, client(TLSFiles{CAFile: caFile})), "(remote): tls: certificate required")
	})
	t.Run("expired client certificate", func(t *testing.T) {
		wantRefused(t, "expired client", handshake(t, addr, client(TLSFiles{CAFile: caFile, CertFile: expired.cert, KeyFile: expired.key})), "(remote): tls: expired certificate")
	})
	t.Run("client certificate without clientAuth", func(t *testing.T) {
		wantRefused(t, "serverAuth-only client", handshake(t, addr, client(TLSFiles{CAFile: caFile, CertFile: serverOnly.cert, KeyFile: serverOnly.key})), "(remote): tls: bad certificate")
	})
	t.Run("server of another CA", func(t *testing.T) {
		err := handshake(t, addr, client(TLSFiles{CAFile: rogueCAFile, CertFile: alice.cert, KeyFile: alice.key}))
		wantRefused(t, "client trusting another CA", err, "(local): tls: failed to verify certificate: x509: certificate signed by unknown authority")
	})
}

// TestServerCertificateChecks: a client refuses a broker whose certificate
// does not cover the address it dialed, or has expired.
func TestServerCertificateChecks(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir, "cluster", CertOptions{})
	caFile := filepath.Join(dir, "cluster", CACertFileName)
	p, err := ca.IssueClient(CertOptions{Name: "alice"})
	alice := writeTo(t, dir, "alice", p, err)
	clientConf, err := ClientTLSConfig(TLSFiles{CAFile: caFile, CertFile: alice.cert, KeyFile: alice.key})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts CertOptions
		want string // "": accepted
	}{
		{"covering SANs", CertOptions{Hosts: []string{"127.0.0.1"}}, ""},
		{"SANs without the address", CertOptions{Hosts: []string{"10.0.0.1", "broker.example.com"}}, "certificate is valid for 10.0.0.1, not 127.0.0.1"},
		{"expired", CertOptions{Hosts: []string{"127.0.0.1"}, NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour}, "certificate has expired"},
		{"not yet valid", CertOptions{Hosts: []string{"127.0.0.1"}, NotBefore: time.Now().Add(24 * time.Hour)}, "is not yet valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ca.IssueBroker(tc.opts)
			f := writeTo(t, t.TempDir(), "b", p, err)
			serverConf, err := ServerTLSConfig(TLSFiles{CertFile: f.cert, KeyFile: f.key, CAFile: caFile, RequireClientCert: true})
			if err != nil {
				t.Fatal(err)
			}
			srv := startServer(t, serverConf, Config{}, echo)
			err = handshake(t, srv.Addr().String(), clientConf)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantRefused(t, tc.name, err, tc.want)
		})
	}
}

func TestPeerTLSConfigs(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir, "cluster", CertOptions{})
	rogue := mustCA(t, dir, "rogue", CertOptions{})
	caFile := filepath.Join(dir, "cluster", CACertFileName)
	rogueCAFile := filepath.Join(dir, "rogue", CACertFileName)
	hosts := CertOptions{Hosts: []string{"127.0.0.1"}}
	p, err := ca.IssueBroker(hosts)
	b1 := writeTo(t, dir, "b1", p, err)
	p, err = ca.IssueBroker(hosts)
	b2 := writeTo(t, dir, "b2", p, err)
	p, err = rogue.IssueBroker(hosts)
	rb := writeTo(t, dir, "rogue-broker", p, err)
	p, err = ca.IssueClient(CertOptions{Name: "alice"})
	alice := writeTo(t, dir, "alice", p, err)

	peer := func(f files, ca string) (server, client *tls.Config) {
		t.Helper()
		s, c, err := PeerTLSConfigs(TLSFiles{CertFile: f.cert, KeyFile: f.key, CAFile: ca})
		if err != nil {
			t.Fatal(err)
		}
		return s, c
	}
	s1, _ := peer(b1, caFile)
	_, c2 := peer(b2, caFile)
	rs, rc := peer(rb, rogueCAFile)
	srv := startServer(t, s1, Config{}, echo)
	rogueSrv := startServer(t, rs, Config{}, echo)

	if err := handshake(t, srv.Addr().String(), c2); err != nil {
		t.Fatalf("broker to broker: %v", err)
	}
	// The rogue broker accepts any server, so that the server side is what
	// refuses.
	rc = rc.Clone()
	rc.InsecureSkipVerify, rc.VerifyConnection = true, nil
	wantRefused(t, "broker of another CA dialing in", handshake(t, srv.Addr().String(), presenting(t, rc, rb)), "(remote): tls: unknown certificate authority")
	wantRefused(t, "dialing a broker of another CA", handshake(t, rogueSrv.Addr().String(), c2), "failed to verify the peer's certificate: x509: certificate signed by unknown authority")
	// A broker is dialed at an address its certificate need not name (a
	// join name resolved to pod IPs): the CA and the broker usages decide.
	p, err = ca.IssueBroker(CertOptions{Hosts: []string{"rafka-0.rafka-headless.example"}})
	unnamed := writeTo(t, dir, "unnamed", p, err)
	us, _ := peer(unnamed, caFile)
	unnamedSrv := startServer(t, us, Config{}, echo)
	if err := handshake(t, unnamedSrv.Addr().String(), c2); err != nil {
		t.Fatalf("broker whose certificate does not name the dialed address: %v", err)
	}
	// A server certificate of the same CA (serverAuth only) is no broker.
	p, err = ca.issue(&x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}, CertOptions{Name: "server-only"})
	server := writeTo(t, dir, "server-only", p, err)
	ss, err := ServerTLSConfig(TLSFiles{CertFile: server.cert, KeyFile: server.key})
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "dialing a server that is not a broker", handshake(t, startServer(t, ss, Config{}, echo).Addr().String(), c2), "peer certificate is not a broker certificate")
	// A client certificate of the same CA cannot pose as a broker.
	aliceConf, err := ClientTLSConfig(TLSFiles{CAFile: caFile, CertFile: alice.cert, KeyFile: alice.key})
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "client certificate on the broker-to-broker side", handshake(t, srv.Addr().String(), aliceConf), "(remote): tls: bad certificate")
	// An explicit ServerName is verified instead of the address.
	_, named, err := PeerTLSConfigs(TLSFiles{CertFile: b2.cert, KeyFile: b2.key, CAFile: caFile, ServerName: "b1.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "ServerName not in the peer's SANs", handshake(t, srv.Addr().String(), named), "wanted to match b1.example.com")

	for _, tc := range []struct {
		name string
		f    TLSFiles
	}{
		{"no CA", TLSFiles{CertFile: b1.cert, KeyFile: b1.key}},
		{"no certificate", TLSFiles{CAFile: caFile}},
		{"certificate of another CA", TLSFiles{CertFile: rb.cert, KeyFile: rb.key, CAFile: caFile}},
		{"client certificate", TLSFiles{CertFile: alice.cert, KeyFile: alice.key, CAFile: caFile}},
		{"key of another certificate", TLSFiles{CertFile: b1.cert, KeyFile: b2.key, CAFile: caFile}},
		{"skip verify", TLSFiles{CertFile: b1.cert, KeyFile: b1.key, CAFile: caFile, InsecureSkipVerify: true}},
	} {
		if _, _, err := PeerTLSConfigs(tc.f); !errors.Is(err, ErrBadTLSFiles) {
			t.Errorf("%s: %v, want ErrBadTLSFiles", tc.name, err)
		}
	}
}

func FuzzParseCA(f *testing.F) {
	p, err := NewCA(CertOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p.Cert, p.Key)
	f.Add(p.Cert, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"), p.Key)
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		ca, err := ParseCA(certPEM, keyPEM)
		if err != nil {
			if !errors.Is(err, ErrBadTLSFiles) && !errors.Is(err, ErrNotCA) && !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("ParseCA: %v, not one of the documented errors", err)
			}
			return
		}
		if !ca.Cert.IsCA {
			t.Fatal("ParseCA accepted a certificate that is not a CA")
		}
	})
}
