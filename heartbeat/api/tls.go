package api

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

// IsLoopback reports whether host (a name or IP literal, without port)
// is this machine: "localhost" or a loopback address. Plain HTTP is
// allowed there only, unless a setting says insecure.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// CheckConsoleURL refuses a console URL that would carry credentials in
// clear: http:// is allowed only to a loopback host or when insecure.
func CheckConsoleURL(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("console URL %q: want https://host[:port]", raw)
	}
	if u.Scheme == "http" && !insecure && !IsLoopback(u.Hostname()) {
		return fmt.Errorf("console URL %q is plain HTTP to another host: credentials would travel in clear; use https:// (or set insecure = true on a network you trust)", raw)
	}
	return nil
}

// Fingerprint is the pin of a certificate: the lowercase hex SHA-256 of
// its DER bytes (what `openssl x509 -noout -fingerprint -sha256` prints,
// without the colons).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// NormalizePin accepts a SHA-256 fingerprint in hex, with or without
// colons and a "sha256:" prefix, and returns it as Fingerprint writes it.
func NormalizePin(pin string) (string, error) {
	p := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(pin), "sha256:"))
	p = strings.ReplaceAll(p, ":", "")
	if b, err := hex.DecodeString(p); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("certificate pin %q: want the 64 hex digits of a SHA-256 fingerprint", pin)
	}
	return p, nil
}

// ClientTLS is the TLS configuration of a console client: the system
// roots, the PEM CA certificates in caFile, or, with pin, exactly the
// certificate whose Fingerprint is pin (a console's self-signed one;
// names and chains are then not checked, the pin is the identity).
func ClientTLS(caFile, pin string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" && pin != "" {
		return nil, errors.New("a CA file and a certificate pin exclude each other: give one")
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if pin != "" {
		want, err := NormalizePin(pin)
		if err != nil {
			return nil, err
		}
		// The standard verification is replaced, not skipped: the
		// connection is accepted only with the pinned certificate.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("console sent no certificate")
			}
			if got := Fingerprint(cs.PeerCertificates[0].Raw); got != want {
				return fmt.Errorf("console certificate %s does not match the pinned %s", got, want)
			}
			return nil
		}
	}
	return cfg, nil
}

// ListenIsLoopback reports whether a listen address ("host:port") only
// accepts connections from this machine; ":8080" listens everywhere.
func ListenIsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host != "" && IsLoopback(host)
}
