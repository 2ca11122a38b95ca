package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"smith/heartbeat/api"
	"smith/internal/selfsigned"
)

// selfSignedValidity: agents pin the fingerprint, not a chain, so the
// certificate lives as long as the fleet trusts it; replacing it means a
// new pin on every agent.
const selfSignedValidity = 10 * 365 * 24 * time.Hour

// consoleTLS loads the console's certificate; with tls_self_signed it
// first creates one where none exists yet. It returns the TLS config and
// the certificate's pin (api.Fingerprint).
func consoleTLS(cfg *Config) (*tls.Config, string, error) {
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if cfg.TLSSelfSigned {
		if certFile == "" {
			dir := filepath.Dir(cfg.DB)
			certFile, keyFile = filepath.Join(dir, "console.crt"), filepath.Join(dir, "console.key")
		}
		if _, err := os.Stat(certFile); errors.Is(err, fs.ErrNotExist) {
			if err := writeSelfSigned(certFile, keyFile, time.Now()); err != nil {
				return nil, "", err
			}
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("TLS certificate %s / key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		api.Fingerprint(cert.Certificate[0]), nil
}

// writeSelfSigned creates an ECDSA P-256 key (0600) and a self-signed
// certificate for this host's name, localhost and the loopback addresses.
func writeSelfSigned(certFile, keyFile string, now time.Time) error {
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	der, key, err := selfsigned.New(selfsigned.Options{
		CommonName: "smith-console " + names[len(names)-1],
		DNSNames:   names,
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:  now.Add(-time.Hour),
		NotAfter:   now.Add(selfSignedValidity),
	})
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("self-signed key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := writePEM(keyFile, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return err
	}
	return writePEM(certFile, "CERTIFICATE", der, 0o644)
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: kind, Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// fingerprint prints the pin of the first certificate in a PEM file.
func fingerprint(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("certificate: %w", err)
	}
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			return "", fmt.Errorf("certificate %s: no PEM CERTIFICATE block", path)
		}
		if b.Type == "CERTIFICATE" {
			return api.Fingerprint(b.Bytes), nil
		}
	}
}
