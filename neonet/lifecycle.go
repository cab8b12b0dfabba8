package neonet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/neolink/neolink/proto"
)

// Shutdown closes the link gracefully: it stops accepting (new connections
// from the peer are refused), waits until every open Conn and light request
// has been closed and everything queued for sending is written, then closes
// the link. NEO has no close frames, so a Conn the peer opened stays open
// until this side closes it: a server closes the Conns it has finished with
// (or whose receivers it stops) for Shutdown to complete before ctx ends. If ctx ends first, the link is closed at once: calls still
// blocked on it get ErrLinkClosed, and Shutdown returns ctx.Err().
func (l *NodeLink) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.closeAcceptLocked()
	if l.idle == nil {
		l.idle = make(chan struct{})
		l.checkIdleLocked()
	}
	idle := l.idle
	l.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	select {
	case <-idle:
	case <-l.done:
	}
	l.tx.drain()
	if err := ctx.Err(); err != nil {
		l.Close()
		return err
	}
	return l.Close()
}

// checkIdleLocked signals Shutdown once no Conn is open.
func (l *NodeLink) checkIdleLocked() {
	if l.idle != nil && !l.idleDone && len(l.local)+len(l.peer) == 0 {
		l.idleDone = true
		close(l.idle)
	}
}

// keepalive pings the peer after Config.KeepAlive without incoming packets
// and takes the link down if no answer comes within KeepAliveTimeout. Its
// Ask1 also reads for everyone, so idle detection sees all traffic.
func (l *NodeLink) keepalive() {
	defer l.bg.Done()
	tick := time.NewTicker(max(l.cfg.KeepAlive/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-tick.C:
		}
		l.mu.Lock()
		idle := time.Since(l.lastRecv)
		l.mu.Unlock()
		if idle < l.cfg.KeepAlive {
			continue
		}
		err := l.ping(l.cfg.KeepAliveTimeout)
		if errors.Is(err, context.DeadlineExceeded) {
			l.fail(&LinkError{Link: l, Op: "keepalive",
				Err: fmt.Errorf("peer did not answer ping within %v", l.cfg.KeepAliveTimeout)})
			return
		}
		if err != nil && l.Err() != nil {
			return
		}
	}
}

// ping asks the peer for a Pong within timeout. The Ping goes out through
// the non-blocking control path, so a peer that stopped reading cannot block
// this goroutine in Write: the missing Pong is what reports it.
func (l *NodeLink) ping(timeout time.Duration) error {
	c, err := l.lightConn()
	if err != nil {
		return err
	}
	defer l.releaseLight(c)
	if !l.tx.control(c.id, &proto.Ping{}) {
		return ErrLinkDown
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = c.expect(ctx, []proto.Msg{&proto.Pong{}})
	return err
}

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
		return nil, fmt.Errorf("%s - %s: TLS handshake: %w", addrString(nc.LocalAddr()), addrString(nc.RemoteAddr()), err)
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
