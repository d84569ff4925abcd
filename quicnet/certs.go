package quicnet

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// A cluster CA and the certificates it issues (the `rafka certs` commands).
//
// Brokers authenticate each other, and clients authenticate to brokers, with
// certificates issued by one cluster CA. Keys are ECDSA P-256 (every TLS 1.3
// stack accepts it, unlike Ed25519), written as PKCS#8 PEM; serial numbers
// are random 128-bit integers. The CA may sign end-entity certificates only
// (path length 0). A broker certificate carries the host names and IP
// addresses it is reached at and both the serverAuth and clientAuth
// extended key usages, because brokers dial each other; a client
// certificate carries clientAuth only, and its subject common name is the
// client's principal.

// Sentinel errors of certificate issuance. Test for them with errors.Is.
// Files that cannot be read or parsed are ErrBadTLSFiles; a file that
// already exists is fs.ErrExist; a missing CA directory is fs.ErrNotExist.
var (
	// ErrNotCA is returned by ParseCA and LoadCA when the certificate is not
	// a CA certificate allowed to sign certificates.
	ErrNotCA = errors.New("quicnet: not a CA certificate")

	// ErrKeyMismatch is returned when a private key does not belong to the
	// certificate it is loaded with.
	ErrKeyMismatch = errors.New("quicnet: private key does not match the certificate")

	// ErrBadHost is returned for a host that is neither an IP address nor a
	// valid DNS name (see ParseHost).
	ErrBadHost = errors.New("quicnet: bad host")

	// ErrBadCertOptions is returned for CertOptions that cannot make a
	// certificate: a missing or unprintable name, no hosts for a broker, a
	// validity that is not positive or that would outlive the CA.
	ErrBadCertOptions = errors.New("quicnet: bad certificate options")
)

// File names of a CA directory and of a certificate directory, as written by
// `rafka certs`.
const (
	CACertFileName = "ca.pem"
	CAKeyFileName  = "ca-key.pem"
	CertFileName   = certFileName // "cert.pem"
	KeyFileName    = keyFileName  // "key.pem"
)

// Default validities of NewCA and of the certificates a CA issues.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
)

// DefaultCAName is the subject common name of a CA created without a name.
const DefaultCAName = "Rafka cluster CA"

// defaultBrokerName is the common name of a broker certificate issued
// without a name whose first host is too long to be one.
const defaultBrokerName = "rafka broker"

// maxCommonName is the upper bound of a subject common name (RFC 5280,
// ub-common-name).
const maxCommonName = 64

// backdate is how long before issue a certificate becomes valid by default,
// so that a peer whose clock is a little behind accepts it.
const backdate = time.Hour

// CertOptions describe a certificate to create.
type CertOptions struct {
	// Name is the subject common name. CA: default DefaultCAName. Broker:
	// default the first host (when it fits). Client: required; it is the principal the
	// broker sees. At most 64 printable characters.
	Name string
	// Hosts (broker only) are the DNS names and IP addresses the broker is
	// reached at, written as subject alternative names; at least one. A
	// client verifies that the name or address it dialed is among them.
	// See ParseHost for the accepted forms.
	Hosts []string
	// Validity is how long the certificate stays valid from the moment it
	// is issued (from NotBefore when that is set). Default:
	// DefaultCAValidity for a CA, DefaultCertValidity otherwise. A
	// certificate may not outlive its CA.
	Validity time.Duration
	// NotBefore is when the certificate becomes valid. Default: an hour
	// before issue, which tolerates clocks a little behind.
	NotBefore time.Time
}

// validity returns the NotBefore and NotAfter of o, given its default.
func (o CertOptions) validity(def time.Duration) (notBefore, notAfter time.Time, err error) {
	v := o.Validity
	if v == 0 {
		v = def
	}
	if v < 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: validity %v is not positive", ErrBadCertOptions, v)
	}
	start := o.NotBefore
	notBefore = start
	if start.IsZero() {
		start = time.Now()
		notBefore = start.Add(-backdate)
	}
	return notBefore.UTC().Truncate(time.Second), start.Add(v).UTC().Truncate(time.Second), nil
}

// checkName reports whether name can be a subject common name.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrBadCertOptions)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: name %q is not UTF-8", ErrBadCertOptions, name)
	case utf8.RuneCountInString(name) > maxCommonName:
		return fmt.Errorf("%w: name %q is longer than %d characters", ErrBadCertOptions, name, maxCommonName)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%w: name %q starts or ends with a space", ErrBadCertOptions, name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: name %q holds a non-printable character", ErrBadCertOptions, name)
		}
	}
	return nil
}

// PEMPair is a PEM certificate and its PEM (PKCS#8) private key.
type PEMPair struct {
	Cert, Key []byte
}

// NewCA creates a self-signed cluster CA: ECDSA P-256, key usages
// certificate and CRL signing, path length 0 (it signs only end-entity
// certificates).
func NewCA(o CertOptions) (PEMPair, error) {
	if o.Name == "" {
		o.Name = DefaultCAName
	}
	if err := checkName(o.Name); err != nil {
		return PEMPair{}, err
	}
	if len(o.Hosts) > 0 {
		return PEMPair{}, fmt.Errorf("%w: a CA has no hosts", ErrBadCertOptions)
	}
	notBefore, notAfter, err := o.validity(DefaultCAValidity)
	if err != nil {
		return PEMPair{}, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"Rafka"}, CommonName: o.Name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	return create(tmpl, nil, nil)
}

// create generates a key, signs tmpl with parent (self-signed when parent is
// nil) and returns both as PEM.
func create(tmpl, parent *x509.Certificate, parentKey crypto.Signer) (PEMPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEMPair{}, fmt.Errorf("quicnet: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return PEMPair{}, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return PEMPair{}, fmt.Errorf("quicnet: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return PEMPair{}, fmt.Errorf("quicnet: marshal key: %w", err)
	}
	return PEMPair{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// randomSerial returns a random positive serial number of at most 128 bits.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for range 8 { // a zero serial has chance 2^-128
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("quicnet: generate serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
	panic("BUG: random serial numbers keep coming out zero")
}

// CA is a cluster CA able to issue broker and client certificates.
type CA struct {
	// Cert is the CA's certificate.
	Cert *x509.Certificate
	key  crypto.Signer
}

// ParseCA parses a CA certificate and its private key (PKCS#8, SEC 1 or
// PKCS#1 PEM). It returns ErrNotCA for a certificate that may not sign
// certificates and ErrKeyMismatch for a key of another certificate.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNotCA, cert.Subject.CommonName)
	}
	// tls.X509KeyPair parses every PEM key form and checks that the key
	// matches the certificate.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if _, kerr := parseKeyPEM(keyPEM); kerr != nil {
			return nil, kerr
		}
		return nil, fmt.Errorf("%w: CA %q", ErrKeyMismatch, cert.Subject.CommonName)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: CA key of type %T cannot sign", ErrBadTLSFiles, pair.PrivateKey)
	}
	return &CA{Cert: cert, key: signer}, nil
}

// LoadCA loads the CA of dir (CACertFileName and CAKeyFileName). A missing
// dir or file is an error wrapping fs.ErrNotExist.
func LoadCA(dir string) (*CA, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("quicnet: CA directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("quicnet: CA directory %s is not a directory", dir)
	}
	certPath, keyPath := filepath.Join(dir, CACertFileName), filepath.Join(dir, CAKeyFileName)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("quicnet: CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("quicnet: CA key: %w", err)
	}
	ca, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w (%s, %s)", err, certPath, keyPath)
	}
	return ca, nil
}

// parseCertPEM parses the first certificate of a PEM bundle.
func parseCertPEM(b []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrBadTLSFiles)
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadTLSFiles, err)
		}
		return cert, nil
	}
}

// parseKeyPEM parses the first private key of a PEM file.
func parseKeyPEM(b []byte) (crypto.PrivateKey, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("%w: no PRIVATE KEY block", ErrBadTLSFiles)
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			return k, nil
		}
		return nil, fmt.Errorf("%w: unparsable %s", ErrBadTLSFiles, block.Type)
	}
}

// IssueBroker issues a broker certificate for o.Hosts (at least one), valid
// for server and client authentication.
func (ca *CA) IssueBroker(o CertOptions) (PEMPair, error) {
	if len(o.Hosts) == 0 {
		return PEMPair{}, fmt.Errorf("%w: a broker certificate needs at least one host", ErrBadCertOptions)
	}
	tmpl := &x509.Certificate{
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range o.Hosts {
		ip, dns, err := ParseHost(h)
		if err != nil {
			return PEMPair{}, err
		}
		switch {
		case ip != nil && !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal):
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		case dns != "" && !slices.Contains(tmpl.DNSNames, dns):
			tmpl.DNSNames = append(tmpl.DNSNames, dns)
		}
	}
	if o.Name == "" {
		o.Name = defaultBrokerName
		if ip, dns, _ := ParseHost(o.Hosts[0]); ip != nil {
			o.Name = ip.String()
		} else if dns = strings.TrimPrefix(dns, "*."); len(dns) <= maxCommonName {
			o.Name = dns
		}
	}
	return ca.issue(tmpl, o)
}

// IssueClient issues a client certificate whose subject common name is
// o.Name (required), valid for client authentication only.
func (ca *CA) IssueClient(o CertOptions) (PEMPair, error) {
	if o.Name == "" {
		return PEMPair{}, fmt.Errorf("%w: a client certificate needs a name", ErrBadCertOptions)
	}
	if len(o.Hosts) > 0 {
		return PEMPair{}, fmt.Errorf("%w: a client certificate has no hosts", ErrBadCertOptions)
	}
	return ca.issue(&x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, o)
}

// issue completes tmpl (its extended key usages and SANs set) from o and
// signs it.
func (ca *CA) issue(tmpl *x509.Certificate, o CertOptions) (PEMPair, error) {
	if err := checkName(o.Name); err != nil {
		return PEMPair{}, err
	}
	notBefore, notAfter, err := o.validity(DefaultCertValidity)
	if err != nil {
		return PEMPair{}, err
	}
	if now := time.Now(); now.After(ca.Cert.NotAfter) {
		return PEMPair{}, fmt.Errorf("%w: the CA %q expired on %s", ErrBadCertOptions, ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
	}
	if notAfter.After(ca.Cert.NotAfter) {
		return PEMPair{}, fmt.Errorf("%w: the certificate would expire on %s, after its CA (%s): choose a shorter validity or a new CA",
			ErrBadCertOptions, notAfter.Format(time.DateOnly), ca.Cert.NotAfter.UTC().Format(time.DateOnly))
	}
	tmpl.Subject = pkix.Name{CommonName: o.Name}
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	return create(tmpl, ca.Cert, ca.key)
}

// ParseHost parses a certificate host: an IP address (IPv4, or IPv6
// without brackets or zone) or a DNS name (letters, digits and hyphens in
// dot-separated labels of at most 63 characters, at most 253 in all; the
// leftmost label may be the wildcard "*"). DNS names are returned in lower
// case. Anything else, a port included, is ErrBadHost.
func ParseHost(s string) (ip net.IP, dns string, err error) {
	bad := func(why string) (net.IP, string, error) {
		return nil, "", fmt.Errorf("%w %q: %s", ErrBadHost, s, why)
	}
	if s == "" {
		return bad("empty")
	}
	if ip := net.ParseIP(s); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		return ip, "", nil
	}
	if strings.HasPrefix(s, "[") || strings.Contains(s, "%") {
		return bad("write an IPv6 address without brackets or zone")
	}
	if h, _, err := net.SplitHostPort(s); err == nil && h != "" {
		return bad("a host name or IP address without a port")
	}
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if len(name) > 253 {
		return bad("a DNS name is at most 253 characters")
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if l == "*" && i == 0 && len(labels) > 2 {
			continue
		}
		if l == "" || len(l) > 63 {
			return bad("not a DNS name (empty label, or a label longer than 63 characters)")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return bad("not a DNS name (a label starts or ends with a hyphen)")
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return bad("not an IP address or a DNS name (letters, digits, hyphens and dots; a wildcard only as \"*.\" before two labels or more)")
			}
		}
	}
	return nil, name, nil
}

// WritePair writes p to dir/certName (mode 0644) and dir/keyName (mode
// 0600), creating dir (mode 0700) when it is missing. Each file is written
// to a temporary file, synced and moved into place, so a reader never sees
// a partial file. Unless overwrite is set, WritePair writes nothing when
// either file exists and returns an error wrapping fs.ErrExist.
func WritePair(dir, certName, keyName string, p PEMPair, overwrite bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("quicnet: %w", err)
	}
	certPath, keyPath := filepath.Join(dir, certName), filepath.Join(dir, keyName)
	if !overwrite {
		var exist []string
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Lstat(p); err == nil {
				exist = append(exist, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("quicnet: %w", err)
			}
		}
		if len(exist) > 0 {
			return fmt.Errorf("quicnet: %s: %w", strings.Join(exist, ", "), fs.ErrExist)
		}
	}
	// The key goes first: a failure between the two leaves a key without a
	// certificate, never a certificate whose key is lost.
	write := writeFileAtomic
	if !overwrite {
		write = writeFileExclusive
	}
	if err := write(keyPath, p.Key, 0o600); err != nil {
		return err
	}
	if err := write(certPath, p.Cert, 0o644); err != nil {
		return err
	}
	return syncDir(dir)
}

// writeFileExclusive is writeFileAtomic that fails with fs.ErrExist instead
// of replacing an existing path: the temporary file is hard-linked into
// place, which, unlike a rename, never replaces a file created meanwhile.
func writeFileExclusive(path string, b []byte, perm os.FileMode) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	// A leftover of an interrupted run is ours to replace.
	if err := writeFileAtomic(tmp, b, perm); err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("quicnet: %s: %w", path, fs.ErrExist)
		}
		return fmt.Errorf("quicnet: write %s: %w", path, err)
	}
	return nil
}

// syncDir makes the renames and links in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("quicnet: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("quicnet: sync %s: %w", dir, err)
	}
	return nil
}

// IsBrokerCert reports whether cert is a broker certificate: valid for both
// server and client authentication. Client certificates of the cluster CA
// are valid for client authentication only, so a listener shared by clients
// and brokers can tell them apart with it (after verification).
func IsBrokerCert(cert *x509.Certificate) bool {
	server, client := false, false
	for _, u := range cert.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageServerAuth:
			server = true
		case x509.ExtKeyUsageClientAuth:
			client = true
		case x509.ExtKeyUsageAny:
			server, client = true, true
		}
	}
	return server && client
}

// PeerTLSConfigs returns the TLS configurations of broker-to-broker
// connections, from a broker certificate (f.CertFile, f.KeyFile) and the
// cluster CA (f.CAFile), all three required; the system roots are never
// trusted. The server side requires a client certificate that chains to
// the CA and is a broker certificate (IsBrokerCert), so a client
// certificate cannot pose as a broker. The client side presents the
// broker certificate and verifies the peer's: it must chain to the CA and
// be a broker certificate, and when f.ServerName is set it must hold that
// name; without one no host name is checked (brokers are dialed at
// resolved or changing addresses, see verifyBrokerPeer). The broker's own
// certificate is checked up front: it must chain to the CA and be a broker
// certificate (ErrBadTLSFiles otherwise).
func PeerTLSConfigs(f TLSFiles) (server, client *tls.Config, err error) {
	if f.CertFile == "" || f.KeyFile == "" || f.CAFile == "" {
		return nil, nil, fmt.Errorf("%w: broker-to-broker TLS needs CertFile, KeyFile and CAFile", ErrBadTLSFiles)
	}
	if f.InsecureSkipVerify {
		return nil, nil, fmt.Errorf("%w: broker-to-broker TLS always verifies", ErrBadTLSFiles)
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadTLSFiles, err)
	}
	pool, err := loadCAPool(f.CAFile)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadTLSFiles, err)
	}
	if !IsBrokerCert(leaf) {
		return nil, nil, fmt.Errorf("%w: %s is not a broker certificate (it needs both serverAuth and clientAuth usages)", ErrBadTLSFiles, f.CertFile)
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, nil, fmt.Errorf("%w: %s does not verify against %s: %w", ErrBadTLSFiles, f.CertFile, f.CAFile, err)
	}
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{ALPN},
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		// Runs after the chain and the clientAuth usage were verified.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !IsBrokerCert(cs.PeerCertificates[0]) {
				return errors.New("quicnet: peer certificate is not a broker certificate")
			}
			return nil
		},
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{ALPN},
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   f.ServerName,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !IsBrokerCert(cs.PeerCertificates[0]) {
				return errors.New("quicnet: peer certificate is not a broker certificate")
			}
			return nil
		},
	}
	if f.ServerName == "" {
		// Brokers are dialed at addresses (a join name resolves to the IPs
		// behind it, a Kubernetes pod's IP changes with every restart), so
		// the name a certificate holds cannot be what is checked: a peer is
		// a broker when its certificate chains to the cluster CA and is a
		// broker certificate. The standard verification is switched off
		// only to be done here without the host name.
		client.InsecureSkipVerify = true
		client.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyBrokerPeer(cs, pool)
		}
	}
	return server, client, nil
}

// verifyBrokerPeer checks the certificate a dialed broker presented: it
// chains to the cluster CA (roots) for serverAuth and is a broker
// certificate. Host names are not checked (PeerTLSConfigs).
func verifyBrokerPeer(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("quicnet: the peer presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("quicnet: failed to verify the peer's certificate: %w", err)
	}
	if !IsBrokerCert(leaf) {
		return errors.New("quicnet: peer certificate is not a broker certificate")
	}
	return nil
}
