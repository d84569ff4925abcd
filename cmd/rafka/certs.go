package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rafka/rafka/quicnet"
)

// maxDays bounds --days: a century.
const maxDays = 36500

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create a cluster CA, broker and client certificates; inspect certificates",
		Long: `Create the certificates of a cluster whose brokers and clients authenticate
by mutual TLS with one cluster CA (see docs/security.md):

  rafka certs create-ca --out certs
  rafka certs create-broker --ca-dir certs --out certs/b1 --host 127.0.0.1 --host localhost
  rafka certs create-client --ca-dir certs --out certs/alice --name alice
  rafka certs inspect certs/b1/cert.pem

Keys are ECDSA P-256; key files are written with mode 0600, certificates
0644, each atomically. Existing files are never replaced without --force.
Unlike the other commands, these take no RAFKA_ environment variables: a
stray RAFKA_FORCE must not replace a CA key.`,
		// Replaces the root's hook, which fills flags from the environment.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(newCreateCACmd(), newCreateBrokerCmd(), newCreateClientCmd(), newInspectCmd())
	return cmd
}

// validity converts --days to a duration.
func validity(days int) (time.Duration, error) {
	if days <= 0 || days > maxDays {
		return 0, usagef("--days %d: want 1 to %d", days, maxDays)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

// issueFlags are the flags shared by create-broker and create-client.
type issueFlags struct {
	caDir, out, name string
	days             int
	force            bool
}

func (f *issueFlags) register(cmd *cobra.Command, nameHelp string) {
	fl := cmd.Flags()
	fl.StringVar(&f.caDir, "ca-dir", "", "directory of the cluster CA (ca.pem, ca-key.pem), as written by create-ca (required)")
	fl.StringVar(&f.out, "out", "", "directory to write cert.pem and key.pem to, created if missing (required)")
	fl.StringVar(&f.name, "name", "", nameHelp)
	fl.IntVar(&f.days, "days", int(quicnet.DefaultCertValidity/(24*time.Hour)), "days the certificate stays valid (at most until the CA expires)")
	fl.BoolVar(&f.force, "force", false, "replace existing cert.pem and key.pem")
}

// issue loads the CA, calls issue with the options of f and writes the pair.
func (f *issueFlags) issue(w, errW io.Writer, kind string, o quicnet.CertOptions, issue func(*quicnet.CA, quicnet.CertOptions) (quicnet.PEMPair, error)) error {
	if f.caDir == "" {
		return usagef("--ca-dir: the directory of the cluster CA is required (create one with `rafka certs create-ca --out DIR`)")
	}
	if f.out == "" {
		return usagef("--out: a directory for cert.pem and key.pem is required")
	}
	var err error
	if o.Validity, err = validity(f.days); err != nil {
		return err
	}
	o.Name = f.name
	ca, err := quicnet.LoadCA(f.caDir)
	if errors.Is(err, fs.ErrNotExist) {
		return usageError{fmt.Errorf("--ca-dir %s: %w (create the CA with `rafka certs create-ca --out %s`)", f.caDir, err, f.caDir)}
	}
	if err != nil {
		return fmt.Errorf("--ca-dir %s: %w", f.caDir, err)
	}
	keyPath := filepath.Join(f.caDir, quicnet.CAKeyFileName)
	if fi, err := os.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(errW, "rafka: warning: %s is readable by others (mode %04o): chmod 600 %s\n", keyPath, fi.Mode().Perm(), keyPath)
	}
	p, err := issue(ca, o)
	if err != nil {
		return usageError{err}
	}
	if err := writePair(f.out, quicnet.CertFileName, quicnet.KeyFileName, p, f.force); err != nil {
		return err
	}
	return wrote(w, kind, filepath.Join(f.out, quicnet.CertFileName), filepath.Join(f.out, quicnet.KeyFileName), p)
}

// writePair is quicnet.WritePair with a hint for existing files.
func writePair(dir, certName, keyName string, p quicnet.PEMPair, force bool) error {
	err := quicnet.WritePair(dir, certName, keyName, p, force)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w (nothing written; --force replaces them)", err)
	}
	return err
}

// wrote reports what was written.
func wrote(w io.Writer, kind, certPath, keyPath string, p quicnet.PEMPair) error {
	block, _ := pem.Decode(p.Cert)
	if block == nil {
		panic("BUG: issued certificate is not PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		panic("BUG: issued certificate does not parse: " + err.Error())
	}
	_, err = fmt.Fprintf(w, "wrote %s %q: %s, key %s (valid until %s)\n",
		kind, c.Subject.CommonName, certPath, keyPath, c.NotAfter.UTC().Format(time.DateOnly))
	return err
}

func newCreateCACmd() *cobra.Command {
	var (
		out, name string
		days      int
		force     bool
	)
	cmd := &cobra.Command{
		Use:   "create-ca --out DIR",
		Short: "Create a cluster CA: DIR/ca.pem and DIR/ca-key.pem (0600)",
		Long: `Create a cluster CA: a self-signed ECDSA P-256 certificate that may sign
broker and client certificates but no other CA (path length 0), in
DIR/ca.pem, and its key in DIR/ca-key.pem (mode 0600). DIR is created
(mode 0700) if missing. Keep ca-key.pem off the brokers: they need only
ca.pem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out: a directory for ca.pem and ca-key.pem is required")
			}
			v, err := validity(days)
			if err != nil {
				return err
			}
			p, err := quicnet.NewCA(quicnet.CertOptions{Name: name, Validity: v})
			if err != nil {
				return usageError{err}
			}
			if err := writePair(out, quicnet.CACertFileName, quicnet.CAKeyFileName, p, force); err != nil {
				return err
			}
			return wrote(cmd.OutOrStdout(), "CA", filepath.Join(out, quicnet.CACertFileName), filepath.Join(out, quicnet.CAKeyFileName), p)
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "directory to write ca.pem and ca-key.pem to, created if missing (required)")
	f.StringVar(&name, "name", quicnet.DefaultCAName, "subject common name of the CA")
	f.IntVar(&days, "days", int(quicnet.DefaultCAValidity/(24*time.Hour)), "days the CA stays valid; certificates it issues expire no later")
	f.BoolVar(&force, "force", false, "replace an existing CA (every certificate it issued stops being trusted)")
	return cmd
}

func newCreateBrokerCmd() *cobra.Command {
	var (
		f     issueFlags
		hosts []string
	)
	cmd := &cobra.Command{
		Use:   "create-broker --ca-dir DIR --out DIR --host HOST...",
		Short: "Issue a broker certificate (server and client authentication) for its hosts",
		Long: `Issue a broker certificate signed by the cluster CA, in OUT/cert.pem, and
its key in OUT/key.pem (mode 0600). Each --host (repeatable, or comma
separated) is a DNS name or an IP address the broker is reached at, written
as a subject alternative name; clients and other brokers check that the
address they dial is among them. Write IPv6 addresses without brackets, and
hosts without ports. The certificate is valid for both server and client
authentication, because brokers dial each other.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(hosts) == 0 {
				return usagef("--host: at least one DNS name or IP address the broker is reached at")
			}
			for _, h := range hosts {
				if _, _, err := quicnet.ParseHost(h); err != nil {
					return usagef("--host: %w", err)
				}
			}
			return f.issue(cmd.OutOrStdout(), cmd.ErrOrStderr(), "broker certificate", quicnet.CertOptions{Hosts: hosts}, (*quicnet.CA).IssueBroker)
		},
	}
	f.register(cmd, "subject common name (default: the first --host)")
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "DNS name or IP address of the broker (repeatable; at least one)")
	return cmd
}

func newCreateClientCmd() *cobra.Command {
	var f issueFlags
	cmd := &cobra.Command{
		Use:   "create-client --ca-dir DIR --out DIR --name NAME",
		Short: "Issue a client certificate whose common name is the client's principal",
		Long: `Issue a client certificate signed by the cluster CA, in OUT/cert.pem, and
its key in OUT/key.pem (mode 0600). NAME becomes the subject common name:
the principal the broker sees for this client. The certificate is valid for
client authentication only; it cannot serve as a broker's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.name == "" {
				return usagef("--name: the client's principal is required")
			}
			return f.issue(cmd.OutOrStdout(), cmd.ErrOrStderr(), "client certificate", quicnet.CertOptions{}, (*quicnet.CA).IssueClient)
		},
	}
	f.register(cmd, "the client's principal, written as the subject common name (required)")
	return cmd
}

func newInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE...",
		Short: "Print the subject, SANs, validity, issuer and usages of PEM certificates",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			now := time.Now()
			for i, path := range args {
				if i > 0 {
					fmt.Fprintln(w)
				}
				if err := inspectFile(w, path, now); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// maxInspectBytes bounds the file inspect reads: certificate bundles are
// kilobytes.
const maxInspectBytes = 16 << 20

// inspectFile prints every certificate of the PEM file at path.
func inspectFile(w io.Writer, path string, now time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxInspectBytes+1))
	if err != nil {
		return err
	}
	if len(b) > maxInspectBytes {
		return fmt.Errorf("%s: larger than %d MiB, not a certificate file", path, maxInspectBytes>>20)
	}
	n, keys := 0, 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			if strings.HasSuffix(block.Type, "PRIVATE KEY") {
				keys++
			}
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("%s: certificate %d: %w", path, n+1, err)
		}
		if n > 0 {
			fmt.Fprintln(w)
		}
		n++
		describeCert(w, path, n, c, now)
	}
	switch {
	case n == 0 && keys > 0:
		return fmt.Errorf("%s holds a private key, no certificate", path)
	case n == 0:
		return fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	return nil
}

// describeCert prints c for an operator.
func describeCert(w io.Writer, path string, n int, c *x509.Certificate, now time.Time) {
	fmt.Fprintf(w, "%s: certificate %d\n", path, n)
	row := func(k, v string) { fmt.Fprintf(w, "  %-10s %s\n", k+":", v) }
	row("subject", c.Subject.String())
	issuer := c.Issuer.String()
	if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
		issuer += " (self-signed)"
	}
	row("issuer", issuer)
	row("serial", fmt.Sprintf("%x", c.SerialNumber))
	var state string
	switch {
	case now.Before(c.NotBefore):
		state = "NOT YET VALID"
	case now.After(c.NotAfter):
		state = fmt.Sprintf("EXPIRED %d days ago", int(now.Sub(c.NotAfter).Hours()/24))
	default:
		state = fmt.Sprintf("valid, expires in %d days", int(math.Round(c.NotAfter.Sub(now).Hours()/24)))
	}
	row("validity", fmt.Sprintf("%s to %s (%s)", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), state))
	var sans []string
	for _, d := range c.DNSNames {
		sans = append(sans, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		sans = append(sans, "IP:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		sans = append(sans, "email:"+e)
	}
	for _, u := range c.URIs {
		sans = append(sans, "URI:"+u.String())
	}
	row("SANs", orDash(strings.Join(sans, ", ")))
	row("key", keyDescription(c.PublicKey))
	row("usage", orDash(strings.Join(keyUsages(c.KeyUsage), ", ")))
	var ekus []string
	for _, u := range c.ExtKeyUsage {
		ekus = append(ekus, extKeyUsageName(u))
	}
	for _, oid := range c.UnknownExtKeyUsage {
		ekus = append(ekus, oid.String())
	}
	row("ext usage", orDash(strings.Join(ekus, ", ")))
	switch {
	case c.IsCA && c.MaxPathLenZero:
		row("CA", "yes, path length 0 (signs end-entity certificates only)")
	case c.IsCA && c.MaxPathLen > 0:
		row("CA", fmt.Sprintf("yes, path length %d", c.MaxPathLen))
	case c.IsCA:
		row("CA", "yes, any path length")
	default:
		row("CA", "no")
	}
	row("role", roleOf(c))
}

// roleOf names what a certificate is for in a Rafka cluster.
func roleOf(c *x509.Certificate) string {
	switch {
	case c.IsCA:
		return "certificate authority"
	case quicnet.IsBrokerCert(c):
		return "broker (server and client authentication)"
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth {
			return fmt.Sprintf("client, principal %q", c.Subject.CommonName)
		}
		if u == x509.ExtKeyUsageServerAuth {
			return "server only (cannot dial other brokers)"
		}
	}
	if len(c.ExtKeyUsage) == 0 {
		return "any (no extended key usage)"
	}
	return "none for Rafka (neither server nor client authentication)"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func keyDescription(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

func keyUsages(u x509.KeyUsage) []string {
	names := []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageDigitalSignature, "digital signature"},
		{x509.KeyUsageContentCommitment, "content commitment"},
		{x509.KeyUsageKeyEncipherment, "key encipherment"},
		{x509.KeyUsageDataEncipherment, "data encipherment"},
		{x509.KeyUsageKeyAgreement, "key agreement"},
		{x509.KeyUsageCertSign, "certificate sign"},
		{x509.KeyUsageCRLSign, "CRL sign"},
		{x509.KeyUsageEncipherOnly, "encipher only"},
		{x509.KeyUsageDecipherOnly, "decipher only"},
	}
	var out []string
	for _, n := range names {
		if u&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func extKeyUsageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageAny:
		return "any"
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	case x509.ExtKeyUsageCodeSigning:
		return "codeSigning"
	case x509.ExtKeyUsageEmailProtection:
		return "emailProtection"
	case x509.ExtKeyUsageTimeStamping:
		return "timeStamping"
	case x509.ExtKeyUsageOCSPSigning:
		return "OCSPSigning"
	}
	return fmt.Sprintf("extended key usage %d", u)
}
