package quicnet

import (
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
	"time"
)

// ALPN is the application protocol negotiated on every Rafka connection.
// A peer offering anything else fails the handshake.
const ALPN = "rafka/1"

// TLSFiles names the PEM files and options from which ServerTLSConfig and
// ClientTLSConfig build a *tls.Config.
type TLSFiles struct {
	// CertFile and KeyFile hold the certificate chain and private key
	// presented to the peer. Server: empty means a self-signed development
	// certificate. Client: optional, presented for mTLS when set.
	CertFile, KeyFile string
	// CAFile is a PEM bundle that verifies the peer. Server: the CAs of
	// client certificates (mTLS). Client: the CAs of the broker's certificate
	// (default: the system roots).
	CAFile string
	// RequireClientCert (server) rejects clients without a certificate that
	// verifies against CAFile. Without it, a certificate a client does
	// present is still verified against CAFile when CAFile is set.
	RequireClientCert bool
	// DataDir (server) is where the self-signed certificate is generated once
	// and kept, in DataDir/tls/cert.pem and DataDir/tls/key.pem (0600), and
	// reused on restart so that clients trusting it keep working. Empty
	// generates a fresh in-memory certificate on every call.
	DataDir string
	// ServerName (client) is the name verified in the broker's certificate.
	// Default: the host of the address given to Dial.
	ServerName string
	// InsecureSkipVerify (client) accepts any broker certificate. For
	// development only: it gives up authentication of the broker.
	InsecureSkipVerify bool
}

// Self-signed development certificate parameters.
const (
	selfSignedValidity = 10 * 365 * 24 * time.Hour
	tlsSubdir          = "tls"
	certFileName       = "cert.pem"
	keyFileName        = "key.pem"
)

// SelfSignedCertPath is where ServerTLSConfig keeps the self-signed
// certificate for dataDir; a client trusts it by naming it as CAFile.
func SelfSignedCertPath(dataDir string) string {
	return filepath.Join(dataDir, tlsSubdir, certFileName)
}

func selfSignedKeyPath(dataDir string) string {
	return filepath.Join(dataDir, tlsSubdir, keyFileName)
}

// ServerTLSConfig returns a TLS 1.3 server configuration offering ALPN.
// Without CertFile and KeyFile it uses the self-signed certificate of
// f.DataDir, generating it on first use (ECDSA P-256, valid 10 years, SANs
// localhost, 127.0.0.1, ::1 and the host name).
func ServerTLSConfig(f TLSFiles) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err = tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadTLSFiles, err)
		}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, fmt.Errorf("%w: CertFile and KeyFile must be given together", ErrBadTLSFiles)
	case f.DataDir == "":
		certPEM, keyPEM, err := generateSelfSigned()
		if err != nil {
			return nil, err
		}
		cert, err = tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("quicnet: self-signed certificate: %w", err)
		}
	default:
		cert, err = loadOrCreateSelfSigned(f.DataDir)
		if err != nil {
			return nil, err
		}
	}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{ALPN},
		Certificates: []tls.Certificate{cert},
	}
	if f.RequireClientCert && f.CAFile == "" {
		return nil, fmt.Errorf("%w: RequireClientCert needs CAFile", ErrBadTLSFiles)
	}
	if f.CAFile != "" {
		pool, err := loadCAPool(f.CAFile)
		if err != nil {
			return nil, err
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		if f.RequireClientCert {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return conf, nil
}

// ClientTLSConfig returns a TLS 1.3 client configuration offering ALPN. It
// trusts CAFile (or the system roots) and presents CertFile/KeyFile when set.
// Dial fills in ServerName from the dialed address when it is empty.
func ClientTLSConfig(f TLSFiles) (*tls.Config, error) {
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{ALPN},
		ServerName:         f.ServerName,
		InsecureSkipVerify: f.InsecureSkipVerify,
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadTLSFiles, err)
		}
		conf.Certificates = []tls.Certificate{cert}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, fmt.Errorf("%w: CertFile and KeyFile must be given together", ErrBadTLSFiles)
	}
	if f.CAFile != "" {
		pool, err := loadCAPool(f.CAFile)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

func loadCAPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadTLSFiles, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w: no certificate in %s", ErrBadTLSFiles, path)
	}
	return pool, nil
}

// loadOrCreateSelfSigned loads dataDir's self-signed pair, generating it when
// either file is missing. A pair that exists but does not load is an error,
// never silently replaced: clients may trust it.
func loadOrCreateSelfSigned(dataDir string) (tls.Certificate, error) {
	certPath, keyPath := SelfSignedCertPath(dataDir), selfSignedKeyPath(dataDir)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	if certErr == nil && keyErr == nil {
		cert, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%w: self-signed pair in %s: %w", ErrBadTLSFiles, filepath.Dir(certPath), err)
		}
		return cert, nil
	}
	for _, err := range []error{certErr, keyErr} {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return tls.Certificate{}, fmt.Errorf("quicnet: self-signed certificate: %w", err)
		}
	}
	certPEM, keyPEM, err := generateSelfSigned()
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("quicnet: self-signed certificate: %w", err)
	}
	// The key goes first: a crash between the two renames leaves a key
	// without a certificate, which the next start regenerates; the reverse
	// would leave a trusted certificate whose key is lost.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("quicnet: self-signed certificate: %w", err)
	}
	return cert, nil
}

// writeFileAtomic writes b to a temporary file in path's directory, syncs it
// and renames it over path, so a reader never sees a partial file.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("quicnet: write %s: %w", path, err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("quicnet: write %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("quicnet: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("quicnet: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("quicnet: write %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("quicnet: write %s: %w", path, err)
	}
	ok = true
	return nil
}

// generateSelfSigned returns a PEM certificate and PKCS#8 key. The
// certificate is its own CA (so clients can list it as CAFile) and is valid
// for both server and client authentication (brokers use it both ways in
// development).
func generateSelfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("quicnet: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("quicnet: generate serial: %w", err)
	}
	dns := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		dns = append(dns, h)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Rafka development"}, CommonName: "rafka self-signed"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              dns,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("quicnet: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("quicnet: marshal key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}
