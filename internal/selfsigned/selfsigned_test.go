// SPDX-License-Identifier: GPL-2.0

package selfsigned

import (
	"crypto/x509"
	"net"
	"testing"
	"time"
)

// The certificate says what it was asked to, is a CA only when asked,
// verifies against itself, and carries the key returned with it.
func TestNew(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, ca := range []bool{false, true} {
		der, key, err := New(Options{CommonName: "web", DNSNames: []string{"localhost", "web-1"},
			IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: now, NotAfter: now.Add(time.Hour), CA: ca})
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject.CommonName != "web" || len(c.DNSNames) != 2 || c.DNSNames[1] != "web-1" ||
			len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) ||
			!c.NotBefore.Equal(now) || !c.NotAfter.Equal(now.Add(time.Hour)) {
			t.Errorf("CA %v: %v %v %v %v..%v", ca, c.Subject, c.DNSNames, c.IPAddresses, c.NotBefore, c.NotAfter)
		}
		if c.IsCA != ca || (c.KeyUsage&x509.KeyUsageCertSign != 0) != ca || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
			t.Errorf("CA %v: IsCA %v key usage %b", ca, c.IsCA, c.KeyUsage)
		}
		if !key.PublicKey.Equal(c.PublicKey) {
			t.Errorf("CA %v: the key returned is not the certificate's", ca)
		}
		roots := x509.NewCertPool()
		roots.AddCert(c)
		_, err = c.Verify(x509.VerifyOptions{Roots: roots, DNSName: "web-1", CurrentTime: now.Add(time.Minute)})
		if err != nil {
			t.Errorf("CA %v: does not verify against itself: %v", ca, err)
		}
	}
}

// Two certificates never share a serial.
func TestSerialsDiffer(t *testing.T) {
	a, _, errA := New(Options{CommonName: "a", NotAfter: time.Unix(1_900_000_000, 0)})
	b, _, errB := New(Options{CommonName: "a", NotAfter: time.Unix(1_900_000_000, 0)})
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	ca, _ := x509.ParseCertificate(a)
	cb, _ := x509.ParseCertificate(b)
	if ca.SerialNumber.Cmp(cb.SerialNumber) == 0 {
		t.Fatalf("serial %v twice", ca.SerialNumber)
	}
}
