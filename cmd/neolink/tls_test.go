package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTLSFiles writes a CA and a certificate it signed, with its key, as
// PEM files in dir, and returns the -ca, -cert and -key flags for them.
func writeTLSFiles(t *testing.T, dir string) []string {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "neolink test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "neolink test node"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*pem.Block{
		"ca.pem":   {Type: "CERTIFICATE", Bytes: caDER},
		"cert.pem": {Type: "CERTIFICATE", Bytes: certDER},
		"key.pem":  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	}
	for name, block := range files {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"-ca", filepath.Join(dir, "ca.pem"), "-cert", filepath.Join(dir, "cert.pem"), "-key", filepath.Join(dir, "key.pem")}
}

// TestTLS pings a TLS server, and checks that TLS on one side only fails.
func TestTLS(t *testing.T) {
	flags := writeTLSFiles(t, t.TempDir())
	s := startServe(t, flags...)
	for _, enc := range []string{"N", "M"} {
		r := neolink(t, 30*time.Second, nil, append([]string{"ping", "-encoding", enc, "-size", "1000", "-n", "50", s.addr}, flags...)...)
		mustSucceed(t, r, "ping over TLS")
	}
	r := neolink(t, 30*time.Second, nil, "ping", "-n", "1", "-timeout", "20s", s.addr)
	wantFailure(t, r, 1, "cannot connect to "+s.addr)
	if !strings.Contains(r.stderr, "the peer may require TLS: give -ca, -cert, -key") {
		t.Errorf("no TLS hint: %s", r.stderr)
	}

	plain := startServe(t)
	r = neolink(t, 30*time.Second, nil, append([]string{"ping", "-n", "1", "-timeout", "20s", plain.addr}, flags...)...)
	wantFailure(t, r, 1, "cannot connect to "+plain.addr)
	if !strings.Contains(r.stderr, "with TLS: the peer may be a plain NEO node") {
		t.Errorf("no hint: %s", r.stderr)
	}
}
