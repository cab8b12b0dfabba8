package neonet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// startTLS wraps nc in TLS when cfg.TLS is set and completes the TLS
// handshake under ctx. On error nc is closed.
func startTLS(ctx context.Context, nc net.Conn, role Role, cfg *Config) (net.Conn, error) {
	if cfg.TLS == nil {
		return nc, nil
	}
	var tc *tls.Conn
	if role == Dialer {
		tc = tls.Client(nc, cfg.TLS)
	} else {
		tc = tls.Server(nc, cfg.TLS)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && (rh.RecordHeader[0] == 0x92 || rh.RecordHeader[0] == 0x4e) {
			err = fmt.Errorf("%w: peer sent a plain NEO handshake (% x), but TLS is required", ErrPeerNotTLS, rh.RecordHeader[:])
		}
		return nil, fmt.Errorf("neonet: %s - %s: TLS handshake: %w", addrString(nc.LocalAddr()), addrString(nc.RemoteAddr()), err)
	}
	return tc, nil
}

// TLSConfig builds a TLS configuration in NEO/py's model: TLS 1.2 or later,
// mutual authentication with certificates that must chain to the CA, and,
// unless verifyHostname is set, no check of the peer's host name (NEO nodes
// are identified by certificate, not by address). The same configuration
// serves both dialing and listening.
func TLSConfig(caFile, certFile, keyFile string, verifyHostname bool) (*tls.Config, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("neonet: %s: no CA certificate found", caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return TLSConfigFrom(pool, cert, verifyHostname), nil
}

// TLSConfigFrom is TLSConfig from an already loaded CA pool and certificate.
func TLSConfigFrom(ca *x509.CertPool, cert tls.Certificate, verifyHostname bool) *tls.Config {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		RootCAs:      ca,
		ClientCAs:    ca,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	if !verifyHostname {
		// Verify the chain ourselves, without the name check that
		// InsecureSkipVerify turns off along with it.
		c.InsecureSkipVerify = true
		c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(ca, raw)
		}
	}
	return c
}

func verifyChain(ca *x509.CertPool, raw [][]byte) error {
	if len(raw) == 0 {
		return errors.New("neonet: peer sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return err
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         ca,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}
