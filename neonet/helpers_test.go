package neonet

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// transport makes a connected pair of net.Conns: dialer side first.
type transport struct {
	name string
	pair func(t testing.TB) (net.Conn, net.Conn)
}

var transports = []transport{
	{"pipe", func(t testing.TB) (net.Conn, net.Conn) { return net.Pipe() }},
	{"tcp", func(t testing.TB) (net.Conn, net.Conn) { return socketPair(t, "tcp", "127.0.0.1:0") }},
	{"unix", func(t testing.TB) (net.Conn, net.Conn) {
		return socketPair(t, "unix", filepath.Join(t.TempDir(), "s"))
	}},
}

var encodings = []proto.Encoding{proto.EncodingN, proto.EncodingM}

func socketPair(t testing.TB, network, addr string) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	a, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if network == "unix" {
		os.Remove(addr)
	}
	return a, r.c
}

// linkPair returns two handshaked links over tr, dialer first, with cfg
// (nil for defaults) on both sides. They are closed at the end of the test.
func linkPair(t testing.TB, tr transport, enc proto.Encoding, cfg *Config) (*NodeLink, *NodeLink) {
	t.Helper()
	return linkPairCfg(t, tr, enc, cfg, cfg)
}

// linkPairCfg is linkPair with a config of its own for each end (nil for
// defaults).
func linkPairCfg(t testing.TB, tr transport, enc proto.Encoding, dcfg, lcfg *Config) (*NodeLink, *NodeLink) {
	t.Helper()
	c1, c2 := *orDefault(dcfg), *orDefault(lcfg)
	c1.Encoding, c2.Encoding = enc, 0
	a, b := tr.pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type res struct {
		l   *NodeLink
		err error
	}
	ch := make(chan res, 1)
	go func() {
		l, err := NewLink(ctx, b, Listener, &c2)
		ch <- res{l, err}
	}()
	la, err := NewLink(ctx, a, Dialer, &c1)
	r := <-ch
	if err != nil || r.err != nil {
		t.Fatalf("links: %v, %v", err, r.err)
	}
	t.Cleanup(func() { la.Close(); r.l.Close() })
	return la, r.l
}

// eachSetup runs f for every transport × encoding.
func eachSetup(t *testing.T, f func(t *testing.T, tr transport, enc proto.Encoding)) {
	for _, tr := range transports {
		for _, enc := range encodings {
			t.Run(tr.name+"/"+enc.String(), func(t *testing.T) { f(t, tr, enc) })
		}
	}
}

// serveObjects answers AskObject with AnswerObject (data = oid bytes) and
// Ping with Pong on every Conn the link accepts, until the link ends.
func serveObjects(l *NodeLink) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			for {
				m, err := c.Recv()
				if err != nil {
					return
				}
				if err := c.Send(answerFor(m)); err != nil {
					return
				}
			}
		}()
	}
}

func answerFor(m proto.Msg) proto.Msg {
	switch m := m.(type) {
	case *proto.AskObject:
		return &proto.AnswerObject{OID: m.OID, Serial: 1, Data: make([]byte, m.OID&0xffff)}
	case *proto.Ping:
		return &proto.Pong{}
	}
	return proto.ProtocolError("unexpected " + proto.Name(m))
}

// serveLight answers Recv1 requests like serveObjects, until the link ends.
func serveLight(l *NodeLink) {
	for {
		req, err := l.Recv1()
		if err != nil {
			return
		}
		req.Reply(answerFor(req.Msg))
		req.Close()
	}
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}
