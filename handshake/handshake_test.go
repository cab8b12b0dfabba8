package handshake

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

var encodings = []proto.Encoding{proto.EncodingN, proto.EncodingM}

// TestOK opens links between two ends of this package, in every pairing a
// cluster uses: fixed on both ends, and dialer against an auto listener.
func TestOK(t *testing.T) {
	for _, tr := range transports {
		for _, enc := range encodings {
			for _, l := range []side{acceptSide(0), acceptSide(enc)} {
				t.Run(fmt.Sprintf("%s/%v/%s", tr.name, enc, l.name), func(t *testing.T) {
					ctx := testContext(t)
					d, c := tr.pair(t)
					got := make(chan error, 1)
					go func() { got <- Dial(ctx, d, enc) }()
					lenc, lerr := l.open(ctx, c)
					if err := <-got; err != nil {
						t.Fatalf("dialer: %v", err)
					}
					if lerr != nil || lenc != enc {
						t.Fatalf("listener: got %v, %v; want %v", lenc, lerr, enc)
					}
					exchangeAfter(t, d, c)
				})
			}
		}
	}
}

// exchangeAfter checks that both conns still carry data both ways once the
// handshake is over, with no deadline left behind.
func exchangeAfter(t *testing.T, d, l net.Conn) {
	t.Helper()
	for _, p := range [][2]net.Conn{{d, l}, {l, d}} {
		errc := make(chan error, 1)
		go func() {
			_, err := p[0].Write([]byte("ping"))
			errc <- err
		}()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(p[1], buf); err != nil || string(buf) != "ping" {
			t.Errorf("after handshake: read %q, %v", buf, err)
		}
		if err := <-errc; err != nil {
			t.Errorf("after handshake: write: %v", err)
		}
	}
}

// TestKeepsFollowingBytes sends the handshake and the first packet in one
// write, as NEO/py does, and checks that the packet bytes are left unread.
func TestKeepsFollowingBytes(t *testing.T) {
	const packet = "first packet after the handshake"
	for _, tr := range transports {
		for _, enc := range encodings {
			for _, s := range []side{dialSide(enc), acceptAuto} {
				t.Run(fmt.Sprintf("%s/%v/%s", tr.name, enc, s.name), func(t *testing.T) {
					ctx := testContext(t)
					d, l := tr.pair(t)
					ours, theirs := d, l
					if s.listener {
						ours, theirs = l, d
					}
					peer := make(chan peerResult, 1)
					go func() { peer <- sendAndDrain(append(Bytes(enc), packet...))(theirs, nil) }()

					got, err := s.open(ctx, ours)
					if err != nil || got != enc {
						t.Fatalf("got %v, %v; want %v", got, err, enc)
					}
					buf := make([]byte, len(packet))
					if _, err := io.ReadFull(ours, buf); err != nil || string(buf) != packet {
						t.Errorf("after the handshake read %q, %v; want %q", buf, err, packet)
					}
					ours.Close()
					if p := <-peer; !bytes.Equal(p.got, Bytes(enc)) {
						t.Errorf("peer received %x, want exactly %x", p.got, Bytes(enc))
					}
				})
			}
		}
	}
}

// TestVersionMismatch: a NEO peer of another release is told apart from
// garbage, the error names both versions, and the peer receives our whole
// handshake before the close, so that it reports a mismatch too.
func TestVersionMismatch(t *testing.T) {
	cases := []struct {
		name        string
		peer        []byte
		enc         proto.Encoding
		peerVersion string
		ourVersion  string
	}{
		{"N-protocol", []byte("NEON\x01\x06"), proto.EncodingN, "0106 (framing 1, protocol 6)", "0105 (framing 1, protocol 5)"},
		{"N-framing", []byte("NEON\x02\x05"), proto.EncodingN, "0205 (framing 2, protocol 5)", "0105 (framing 1, protocol 5)"},
		{"M-protocol", []byte("\x92\xa3NEO\x04"), proto.EncodingM, "04 (protocol 4)", "05 (protocol 5)"},
		{"M-not-fixint", []byte("\x92\xa3NEO\xcc"), proto.EncodingM, "cc", "05 (protocol 5)"},
	}
	for _, tr := range transports {
		for _, tc := range cases {
			for _, s := range []side{dialSide(tc.enc), acceptAuto} {
				t.Run(fmt.Sprintf("%s/%s/%s", tr.name, tc.name, s.name), func(t *testing.T) {
					o := run(t, testContext(t), tr, s, sendAndDrain(tc.peer))
					var ve *VersionError
					if !errors.As(o.err, &ve) {
						t.Fatalf("got %v, want a *VersionError", o.err)
					}
					if ve.Encoding != tc.enc || !bytes.Equal(ve.Peer, tc.peer[magicLen(tc.enc):]) ||
						!bytes.Equal(ve.Local, Bytes(tc.enc)[magicLen(tc.enc):]) {
						t.Errorf("got %+v", ve)
					}
					msg := o.err.Error()
					want := "peer = " + tc.peerVersion + "; our side = " + tc.ourVersion
					if !strings.Contains(msg, want) || !strings.Contains(msg, "version mismatch") {
						t.Errorf("message %q does not contain %q", msg, want)
					}
					if !bytes.Equal(o.peer.got, Bytes(tc.enc)) {
						t.Errorf("peer received %x, want our handshake %x", o.peer.got, Bytes(tc.enc))
					}
				})
			}
		}
	}
}

// TestEncodingMismatch opens an N end against an M end: both see a NEO peer
// with the wrong encoding, not garbage.
func TestEncodingMismatch(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx := testContext(t)
			d, l := tr.pair(t)
			got := make(chan error, 1)
			go func() { got <- Dial(ctx, d, proto.EncodingN) }()
			errs := map[proto.Encoding]error{
				proto.EncodingM: Dial(ctx, l, proto.EncodingM),
				proto.EncodingN: <-got,
			}
			for local, err := range errs {
				var ee *EncodingError
				if !errors.As(err, &ee) || ee.Local != local || ee.Peer == local || !ee.Peer.Valid() {
					t.Errorf("%v end: got %v, want an *EncodingError", local, err)
				}
			}
			assertClosed(t, d)
			assertClosed(t, l)
		})
	}
}

func TestNotNEO(t *testing.T) {
	cases := map[string][]byte{
		"http":        []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"N-typo":      []byte("NEOX\x01\x05"),
		"M-str8":      []byte("\x92\xc4\x03NEO\x05"), // Py2 NEO/py with msgpack >= 1.0
		"old-v5":      []byte("\x00\x00\x00\x05"),
		"zero":        []byte("\x00\x00\x00\x00\x00\x00"),
		"single-byte": []byte("x"),
	}
	for _, tr := range transports {
		for name, data := range cases {
			for _, s := range []side{dialN, dialM, acceptAuto} {
				t.Run(fmt.Sprintf("%s/%s/%s", tr.name, name, s.name), func(t *testing.T) {
					o := run(t, testContext(t), tr, s, sendAndDrain(data))
					var ne *NotNEOError
					if !errors.As(o.err, &ne) {
						t.Fatalf("got %v, want a *NotNEOError", o.err)
					}
					if len(ne.Prefix) == 0 || !bytes.HasPrefix(data, ne.Prefix) {
						t.Errorf("Prefix %x is not a prefix of what the peer sent, %x", ne.Prefix, data)
					}
					if !strings.Contains(o.err.Error(), hex.EncodeToString(ne.Prefix)) {
						t.Errorf("message %q lacks the bytes seen", o.err)
					}
					if o.elapsed > prompt {
						t.Errorf("took %v", o.elapsed)
					}
				})
			}
		}
	}
}

// TestPeerV6: a NEO/go 2020 peer sends 4 bytes and waits for ours. We must
// decide on those 4 bytes, and the peer must have read our first 4 bytes,
// on which NEO/go reports "protocol version mismatch".
func TestPeerV6(t *testing.T) {
	for _, tr := range transports {
		for _, s := range []side{dialN, dialM, acceptAuto} {
			t.Run(tr.name+"/"+s.name, func(t *testing.T) {
				o := run(t, testContext(t), tr, s, neoGo2020)
				if !errors.Is(o.err, ErrPeerV6) {
					t.Fatalf("got %v, want ErrPeerV6", o.err)
				}
				if !strings.Contains(o.err.Error(), "NEO/go-2020 protocol v6") {
					t.Errorf("message %q", o.err)
				}
				if o.elapsed > prompt {
					t.Errorf("took %v: blocked waiting for more than 4 bytes", o.elapsed)
				}
				sent := s.sends
				if sent == 0 {
					sent = proto.EncodingN
				}
				if !bytes.Equal(o.peer.got, Bytes(sent)[:4]) || bytes.Equal(o.peer.got, handshakeV6[:]) {
					t.Errorf("NEO/go read %x, want %x, which it reports as a version mismatch", o.peer.got, Bytes(sent)[:4])
				}
			})
		}
	}
}

// TestPeerTLS runs a real TLS client against a plain end.
func TestPeerTLS(t *testing.T) {
	tlsClient := func(c net.Conn, _ <-chan struct{}) peerResult {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		err := tls.Client(c, &tls.Config{InsecureSkipVerify: true}).HandshakeContext(ctx)
		return peerResult{err: err}
	}
	for _, tr := range transports {
		for _, s := range []side{dialN, dialM, acceptAuto} {
			t.Run(tr.name+"/"+s.name, func(t *testing.T) {
				o := run(t, testContext(t), tr, s, tlsClient)
				if !errors.Is(o.err, ErrPeerTLS) {
					t.Fatalf("got %v, want ErrPeerTLS", o.err)
				}
				if !strings.Contains(o.err.Error(), "peer started TLS") {
					t.Errorf("message %q", o.err)
				}
				if o.peer.err == nil {
					t.Error("the TLS client completed a handshake")
				}
			})
		}
	}
}

func TestPeerClosesAfterPartialData(t *testing.T) {
	cases := map[string][]byte{
		"N-3":  []byte("NEO"),
		"N-5":  []byte("NEON\x01"),
		"M-5":  []byte("\x92\xa3NEO"),
		"v6-2": []byte("\x00\x00"),
	}
	for _, tr := range transports {
		for name, data := range cases {
			for _, s := range []side{dialN, acceptAuto} {
				t.Run(fmt.Sprintf("%s/%s/%s", tr.name, name, s.name), func(t *testing.T) {
					o := run(t, testContext(t), tr, s, partialThenClose(data))
					if !errors.Is(o.err, io.ErrUnexpectedEOF) {
						t.Fatalf("got %v, want io.ErrUnexpectedEOF", o.err)
					}
					if !strings.Contains(o.err.Error(), hex.EncodeToString(data)) {
						t.Errorf("message %q lacks the bytes received", o.err)
					}
				})
			}
		}
	}
}

// TestPeerClosesImmediately: a peer that hangs up before sending a byte. A
// dialer's error says why a peer usually does that (NEO/py master closes on
// an N handshake; a TLS server on any plain one); a listener's does not guess.
func TestPeerClosesImmediately(t *testing.T) {
	hints := map[string][]string{
		dialN.name:      {"M encoding (NEO/py)", "TLS"},
		dialM.name:      {"TLS"},
		acceptAuto.name: nil,
	}
	for _, tr := range transports {
		for _, s := range []side{dialN, dialM, acceptAuto} {
			t.Run(tr.name+"/"+s.name, func(t *testing.T) {
				o := run(t, testContext(t), tr, s, partialThenClose(nil))
				if !errors.Is(o.err, io.EOF) || errors.Is(o.err, io.ErrUnexpectedEOF) {
					t.Fatalf("got %v, want io.EOF", o.err)
				}
				msg := o.err.Error()
				if !strings.HasPrefix(msg, "handshake: ") || !strings.Contains(msg, "before sending a handshake") {
					t.Errorf("message %q", msg)
				}
				for _, h := range hints[s.name] {
					if !strings.Contains(msg, h) {
						t.Errorf("message %q does not mention %q", msg, h)
					}
				}
				if hints[s.name] == nil && strings.Contains(msg, "TLS") {
					t.Errorf("listener's message %q guesses", msg)
				}
			})
		}
	}
}

// TestPeerResetsImmediately: a peer that resets the connection (closes with
// our handshake unread, as OpenSSL's TLS server does) is reported like one
// that closed, with the reset kept for errors.Is.
func TestPeerResetsImmediately(t *testing.T) {
	reset := func(c net.Conn, _ <-chan struct{}) peerResult {
		buf := make([]byte, 1)
		_, err := io.ReadFull(c, buf)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		return peerResult{got: buf, err: err}
	}
	tcp := transports[1]
	for _, s := range []side{dialN, dialM} {
		t.Run(s.name, func(t *testing.T) {
			o := run(t, testContext(t), tcp, s, reset)
			if !errors.Is(o.err, syscall.ECONNRESET) {
				t.Fatalf("got %v, want ECONNRESET", o.err)
			}
			if msg := o.err.Error(); !strings.Contains(msg, "before sending a handshake") || !strings.Contains(msg, "TLS") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

// TestDialTLSListener dials a real TLS server in plain: the error must point
// at TLS, whether the server closes, resets or answers with an alert.
func TestDialTLSListener(t *testing.T) {
	cfg := &tls.Config{Certificates: []tls.Certificate{testCertificate(t)}}
	tlsServer := func(c net.Conn, _ <-chan struct{}) peerResult {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		err := tls.Server(c, cfg).HandshakeContext(ctx)
		return peerResult{err: err}
	}
	alertServer := func(c net.Conn, _ <-chan struct{}) peerResult {
		got := make([]byte, Size)
		_, err := io.ReadFull(c, got)
		c.Write(tlsAlert)
		hangUp(c)
		return peerResult{got: got, err: err}
	}
	for _, tr := range transports {
		for _, s := range []side{dialN, dialM} {
			t.Run(tr.name+"/"+s.name+"/crypto-tls", func(t *testing.T) {
				o := run(t, testContext(t), tr, s, tlsServer)
				if o.err == nil || !strings.Contains(o.err.Error(), "TLS") {
					t.Fatalf("got %v, want an error that mentions TLS", o.err)
				}
				if !errors.Is(o.err, io.EOF) && !errors.Is(o.err, syscall.ECONNRESET) {
					t.Errorf("got %v, want io.EOF or ECONNRESET", o.err)
				}
				if o.peer.err == nil {
					t.Error("the TLS server completed a handshake")
				}
			})
			t.Run(tr.name+"/"+s.name+"/alert", func(t *testing.T) {
				o := run(t, testContext(t), tr, s, alertServer)
				if !errors.Is(o.err, ErrPeerTLSAlert) {
					t.Fatalf("got %v, want ErrPeerTLSAlert", o.err)
				}
				if msg := o.err.Error(); !strings.Contains(msg, "TLS alert") || strings.Contains(msg, ": handshake: ") {
					t.Errorf("message %q", msg)
				}
			})
		}
	}
}

// testCertificate makes a self-signed certificate for a loopback TLS server.
func testCertificate(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "neolink-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestContextCancel cancels while our end is blocked. Against a silent peer
// on a net.Pipe the writer is blocked too; both must be released.
func TestContextCancel(t *testing.T) {
	shutdown := errors.New("node shutting down")
	for _, tr := range transports {
		for _, s := range []side{dialN, dialM, acceptAuto} {
			t.Run(tr.name+"/"+s.name, func(t *testing.T) {
				ctx, cancel := context.WithCancelCause(testContext(t))
				timer := time.AfterFunc(50*time.Millisecond, func() { cancel(shutdown) })
				defer timer.Stop()
				o := run(t, ctx, tr, s, silent)
				if !errors.Is(o.err, context.Canceled) || !errors.Is(o.err, shutdown) {
					t.Fatalf("got %v, want context.Canceled with its cause", o.err)
				}
				if o.elapsed > prompt {
					t.Errorf("took %v to notice the cancel", o.elapsed)
				}
			})
		}
	}
}

func TestContextDeadline(t *testing.T) {
	const timeout = 100 * time.Millisecond
	sendThenWait := func(data []byte) peerFunc {
		return func(c net.Conn, stop <-chan struct{}) peerResult {
			c.Write(data)
			<-stop
			return peerResult{}
		}
	}
	peers := []struct {
		name string
		peer peerFunc
		want string
	}{
		{"silent", silent, "after 0 of the peer's 6 handshake bytes"},
		{"partial", sendThenWait([]byte("NEO")), "after 3 of the peer's 6 handshake bytes"},
	}
	for _, tr := range transports {
		for _, s := range []side{dialN, acceptAuto} {
			for _, p := range peers {
				t.Run(tr.name+"/"+s.name+"/"+p.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					defer cancel()
					o := run(t, ctx, tr, s, p.peer)
					if !errors.Is(o.err, context.DeadlineExceeded) {
						t.Fatalf("got %v, want context.DeadlineExceeded", o.err)
					}
					if !strings.Contains(o.err.Error(), p.want) {
						t.Errorf("message %q does not say %q", o.err, p.want)
					}
					if o.elapsed < timeout-10*time.Millisecond || o.elapsed > prompt {
						t.Errorf("took %v with a %v deadline", o.elapsed, timeout)
					}
				})
			}
		}
	}
}

// TestContextDoneBeforeStart: nothing is sent on a conn whose context has
// already ended, and the conn is still closed.
func TestContextDoneBeforeStart(t *testing.T) {
	for _, tr := range transports {
		for _, s := range []side{dialN, acceptAuto} {
			t.Run(tr.name+"/"+s.name, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				o := run(t, ctx, tr, s, sendAndDrain(nil))
				if !errors.Is(o.err, context.Canceled) {
					t.Fatalf("got %v, want context.Canceled", o.err)
				}
				if len(o.peer.got) != 0 {
					t.Errorf("peer received %x", o.peer.got)
				}
			})
		}
	}
}

// TestDeadlineClearedOnSuccess: the ctx deadline guards only the handshake;
// the link outlives it.
func TestDeadlineClearedOnSuccess(t *testing.T) {
	const timeout = 100 * time.Millisecond
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			d, l := tr.pair(t)
			got := make(chan error, 1)
			go func() {
				_, err := Accept(ctx, l, 0)
				got <- err
			}()
			if err := Dial(ctx, d, proto.EncodingN); err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * timeout)
			exchangeAfter(t, d, l)
		})
	}
}

func TestInvalidEncoding(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			calls := map[string]func(net.Conn) error{
				"Dial(0)": func(c net.Conn) error { return Dial(context.Background(), c, 0) },
				"Dial(X)": func(c net.Conn) error { return Dial(context.Background(), c, 'X') },
				"Accept(X)": func(c net.Conn) error {
					_, err := Accept(context.Background(), c, 'X')
					return err
				},
			}
			for name, call := range calls {
				d, _ := tr.pair(t)
				err := call(d)
				var he *Error
				if !errors.As(err, &he) || !strings.Contains(err.Error(), "invalid encoding") {
					t.Errorf("%s: got %v", name, err)
				}
				assertClosed(t, d)
			}
		})
	}
}

// TestBackgroundContext covers a context that can never end, which needs no
// watcher; the scripted peer keeps the test bounded.
func TestBackgroundContext(t *testing.T) {
	for _, tr := range transports {
		for _, s := range []side{dialN, acceptAuto} {
			t.Run(tr.name+"/"+s.name, func(t *testing.T) {
				o := run(t, context.Background(), tr, s, sendAndDrain(Bytes(proto.EncodingN)))
				if o.err != nil || o.enc != proto.EncodingN {
					t.Fatalf("got %v, %v", o.enc, o.err)
				}
				if !bytes.Equal(o.peer.got, Bytes(proto.EncodingN)) {
					t.Errorf("peer received %x", o.peer.got)
				}
			})
		}
		t.Run(tr.name+"/not-NEO", func(t *testing.T) {
			o := run(t, context.Background(), tr, dialN, sendAndDrain([]byte("SSH-2.0-x\r\n")))
			var ne *NotNEOError
			if !errors.As(o.err, &ne) {
				t.Fatalf("got %v, want a *NotNEOError", o.err)
			}
		})
	}
}

// TestAnswerFails: in auto mode, a peer that sends its handshake and hangs up
// at once makes our answer fail on a net.Pipe (TCP still buffers it); the
// failure is reported, not a half-open link.
func TestAnswerFails(t *testing.T) {
	closeAfter := func(c net.Conn, _ <-chan struct{}) peerResult {
		c.Write(Bytes(proto.EncodingN))
		c.Close()
		return peerResult{}
	}
	o := run(t, testContext(t), transports[0], acceptAuto, closeAfter)
	if !errors.Is(o.err, io.ErrClosedPipe) {
		t.Fatalf("got %v, want io.ErrClosedPipe", o.err)
	}
}
