package handshake

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// testTimeout bounds every handshake in the tests; a hang fails the test
// instead of the whole run.
const testTimeout = 5 * time.Second

// prompt is how long a call that must not block may take. It is generous so
// that -race on a loaded machine stays green, and still far below testTimeout.
const prompt = 2 * time.Second

// transport makes a connected pair of conns: the dialing end and the
// accepted end.
type transport struct {
	name string
	pair func(t testing.TB) (dialer, listener net.Conn)
}

var transports = []transport{
	{"pipe", pipePair},
	{"tcp", tcpPair},
}

func pipePair(t testing.TB) (net.Conn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		d.Close()
		t.Fatal(a.err)
	}
	t.Cleanup(func() { d.Close(); a.c.Close() })
	return d, a.c
}

// side is one way of opening our end of a link.
type side struct {
	name     string
	listener bool           // our end is the accepted one
	sends    proto.Encoding // the encoding we answer in, 0 when it depends on the peer
	open     func(ctx context.Context, c net.Conn) (proto.Encoding, error)
}

func dialSide(enc proto.Encoding) side {
	return side{"dial-" + enc.String(), false, enc, func(ctx context.Context, c net.Conn) (proto.Encoding, error) {
		return enc, Dial(ctx, c, enc)
	}}
}

func acceptSide(enc proto.Encoding) side {
	name := "accept-auto"
	if enc != 0 {
		name = "accept-" + enc.String()
	}
	return side{name, true, enc, func(ctx context.Context, c net.Conn) (proto.Encoding, error) {
		return Accept(ctx, c, enc)
	}}
}

var (
	dialN      = dialSide(proto.EncodingN)
	dialM      = dialSide(proto.EncodingM)
	acceptAuto = acceptSide(0)
	acceptN    = acceptSide(proto.EncodingN)
)

// peerResult is what a scripted peer saw.
type peerResult struct {
	got []byte // bytes read from our end
	err error  // how its reading ended
}

// peerFunc scripts the far end. stop is closed once our side has returned.
type peerFunc func(c net.Conn, stop <-chan struct{}) peerResult

// outcome is what one run of a side against a peer produced.
type outcome struct {
	enc     proto.Encoding
	err     error
	elapsed time.Duration
	peer    peerResult
}

// run opens our side against peer on a fresh pair of tr, checks that a
// failure left our conn closed, and waits for the peer to finish.
func run(t *testing.T, ctx context.Context, tr transport, s side, peer peerFunc) outcome {
	t.Helper()
	d, l := tr.pair(t)
	ours, theirs := d, l
	if s.listener {
		ours, theirs = l, d
	}
	stop := make(chan struct{})
	done := make(chan peerResult, 1)
	go func() {
		defer theirs.Close()
		done <- peer(theirs, stop)
	}()

	start := time.Now()
	enc, err := s.open(ctx, ours)
	o := outcome{enc: enc, err: err, elapsed: time.Since(start)}
	if err != nil {
		assertClosed(t, ours)
		var he *Error
		if !errors.As(err, &he) {
			t.Errorf("error %T %v is not a *Error", err, err)
		}
	}
	close(stop)
	ours.Close()
	select {
	case o.peer = <-done:
	case <-time.After(testTimeout):
		t.Fatal("scripted peer did not finish")
	}
	return o
}

// assertClosed checks that c was closed by the code under test: a Read on a
// closed conn fails at once with a "closed" error, while an open one times out.
func assertClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("conn not closed after a failed handshake: Read returned %v", err)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// sendAndDrain is a peer that writes data and, at the same time, reads
// everything we send until the conn ends, as any NEO node would.
func sendAndDrain(data []byte) peerFunc {
	return func(c net.Conn, _ <-chan struct{}) peerResult {
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			c.Write(data)
		}()
		got, err := readAll(c)
		<-wrote
		return peerResult{got, err}
	}
}

// readAll reads until the conn ends and reports why it ended; a clean end is
// io.EOF, unlike io.ReadAll, so that tests can tell a close from a reset.
func readAll(c net.Conn) ([]byte, error) {
	var got []byte
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// hangUp ends the peer's side of the stream. On TCP it only shuts down the
// write half, which our side sees as the same EOF as a close, but which
// cannot turn into a reset because of our handshake still unread by the peer.
func hangUp(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// partialThenClose is a peer that sends data and hangs up, reading what we
// send meanwhile.
func partialThenClose(data []byte) peerFunc {
	return func(c net.Conn, _ <-chan struct{}) peerResult {
		drained := make(chan peerResult, 1)
		go func() {
			got, err := readAll(c)
			drained <- peerResult{got, err}
		}()
		c.Write(data)
		hangUp(c)
		return <-drained
	}
}

// silent is a peer that neither reads nor writes until our side returned,
// so that our side stays blocked, on a net.Pipe even in its Write.
func silent(c net.Conn, stop <-chan struct{}) peerResult {
	<-stop
	return peerResult{}
}

// neoGo2020 behaves like NEO/go 2020's handshake: it sends 00 00 00 06 and
// reads exactly 4 bytes at the same time. It does not hang up after that:
// it waits for us to close, which a "must not block for 6 bytes" test needs.
func neoGo2020(c net.Conn, _ <-chan struct{}) peerResult {
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		c.Write(handshakeV6[:])
	}()
	got := make([]byte, 4)
	_, err := io.ReadFull(c, got)
	if err == nil {
		_, err = readAll(c)
	}
	<-wrote
	return peerResult{got, err}
}
