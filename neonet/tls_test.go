package neonet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/proto"
)

// testCA issues certificates for tests; keys live only in memory.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "neolink test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a certificate for name, usable by clients and servers.
func (ca *testCA) issue(t testing.TB, name string, ips ...net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		IPAddresses:  ips,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// listenObjects starts a link listener with cfg (TLS or plain) serving
// objects on every link.
func listenObjects(t *testing.T, cfg *Config) *LinkListener {
	t.Helper()
	ll, err := ListenLink("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ll.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			l, err := ll.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer l.Close(); serveObjects(l) }()
		}
	}()
	return ll
}

func dialAsk(t *testing.T, addr string, cfg *Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := DialLink(ctx, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer l.Close()
	c, err := l.NewConn()
	if err != nil {
		return err
	}
	var r proto.AnswerObject
	return c.Ask(&proto.AskObject{OID: 7}, &r)
}

func TestTLS(t *testing.T) {
	leakCheck(t)
	ca := newTestCA(t)
	// NEO/py's model: names are not checked, only the chain.
	serverCfg := DefaultConfig()
	serverCfg.TLS = TLSConfigFrom(ca.pool, ca.issue(t, "storage-1"), false)
	ll := listenObjects(t, serverCfg)
	addr := ll.Addr().String()

	for _, enc := range encodings {
		cfg := DefaultConfig()
		cfg.Encoding = enc
		cfg.TLS = TLSConfigFrom(ca.pool, ca.issue(t, "client-1"), false)
		if err := dialAsk(t, addr, cfg); err != nil {
			t.Fatalf("%v: mutual TLS without name check: %v", enc, err)
		}
	}

	// With host name checking, the server's certificate must name it.
	checked := DefaultConfig()
	checked.TLS = TLSConfigFrom(ca.pool, ca.issue(t, "client-2"), true)
	checked.TLS.ServerName = "storage-1"
	if err := dialAsk(t, addr, checked); err != nil {
		t.Fatalf("name check with the right name: %v", err)
	}
	checked.TLS.ServerName = "storage-2"
	var hostErr x509.HostnameError
	if err := dialAsk(t, addr, checked); !errors.As(err, &hostErr) {
		t.Fatalf("name check with a wrong name: err = %v", err)
	}

	// A certificate from another CA is refused.
	other := newTestCA(t)
	rogue := DefaultConfig()
	rogue.TLS = TLSConfigFrom(ca.pool, other.issue(t, "rogue"), false)
	if err := dialAsk(t, addr, rogue); err == nil {
		t.Fatal("client with a certificate from another CA was accepted")
	}

	// A plain client on the TLS listener fails fast.
	start := time.Now()
	if err := dialAsk(t, addr, DefaultConfig()); err == nil {
		t.Fatal("plain client accepted by a TLS listener")
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("plain client vs TLS listener did not fail fast")
	}
	if ll.HandshakeFailures() < 2 {
		t.Fatalf("listener counted %d handshake failures", ll.HandshakeFailures())
	}
}

// The reverse: a TLS client on a plain listener is told the peer started TLS.
func TestTLSClientPlainListener(t *testing.T) {
	leakCheck(t)
	var mu sync.Mutex
	var seen error
	cfg := DefaultConfig()
	cfg.OnHandshakeError = func(_ net.Addr, err error) { mu.Lock(); seen = err; mu.Unlock() }
	ll := listenObjects(t, cfg)
	ca := newTestCA(t)
	tcfg := DefaultConfig()
	tcfg.TLS = TLSConfigFrom(ca.pool, ca.issue(t, "c"), false)
	if err := dialAsk(t, ll.Addr().String(), tcfg); err == nil {
		t.Fatal("TLS client accepted by a plain listener")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		mu.Lock()
		err := seen
		mu.Unlock()
		if errors.Is(err, handshake.ErrPeerTLS) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("listener error = %v, want handshake.ErrPeerTLS", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countingConn counts Write calls and makes each take a while, so that
// concurrent senders pile up behind the writer.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	time.Sleep(200 * time.Microsecond)
	return c.Conn.Write(b)
}

// Under TLS, concurrent small sends are still coalesced into few writes
// (and so few TLS records), not one per packet.
func TestTLSCoalescing(t *testing.T) {
	leakCheck(t)
	ca := newTestCA(t)
	a, b := socketPair(t, "tcp", "127.0.0.1:0")
	counted := &countingConn{Conn: a}
	ca1, cb := DefaultConfig(), DefaultConfig()
	ca1.TLS = TLSConfigFrom(ca.pool, ca.issue(t, "a"), false)
	cb.TLS = TLSConfigFrom(ca.pool, ca.issue(t, "b"), false)
	ctx := ctxTimeout(t)
	ch := make(chan *NodeLink, 1)
	go func() {
		l, err := NewLink(ctx, b, Listener, cb)
		if err != nil {
			t.Error(err)
		}
		ch <- l
	}()
	la, err := NewLink(ctx, counted, Dialer, ca1)
	if err != nil {
		t.Fatal(err)
	}
	lb := <-ch
	if lb == nil {
		t.FailNow()
	}
	defer la.Close()
	defer lb.Close()
	base := counted.writes.Load()
	const senders, each = 16, 100
	c, _ := la.NewConn()
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				c.Send(&proto.Ping{})
			}
		}()
	}
	sc, err := lb.Accept()
	if err != nil {
		t.Fatal(err)
	}
	for range senders * each {
		if _, err := sc.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	writes := counted.writes.Load() - base
	if writes > senders*each/4 {
		t.Fatalf("%d packets took %d writes: not coalesced", senders*each, writes)
	}
	t.Logf("%d packets in %d TLS writes", senders*each, writes)
}
