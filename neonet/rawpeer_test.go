package neonet

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/proto"
)

// rawPeer is the far end of a link driven packet by packet, to check what
// exactly goes on the wire.
type rawPeer struct {
	t   testing.TB
	nc  net.Conn
	enc proto.Encoding
	rd  *proto.PacketReader
}

// rawPair returns a link (with role) and a raw peer handshaked with it.
func rawPair(t testing.TB, tr transport, enc proto.Encoding, role Role, cfg *Config) (*NodeLink, *rawPeer) {
	t.Helper()
	if cfg == nil {
		cfg = DefaultConfig()
	}
	c := *cfg
	c.Encoding = enc
	a, b := tr.pair(t)
	if role == Listener {
		a, b = b, a
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- handshake.Dial(ctx, b, enc) }()
	l, err := NewLink(ctx, a, role, &c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: t, nc: b, enc: enc, rd: proto.NewPacketReader(b, enc, 0, nil)}
	t.Cleanup(func() { l.Close(); b.Close() })
	return l, p
}

func (p *rawPeer) send(id uint32, m proto.Msg) {
	p.t.Helper()
	b, err := proto.AppendPacket(nil, p.enc, id, m, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(b)
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatalf("raw peer write: %v", err)
	}
}

// recv reads one packet and decodes it.
func (p *rawPeer) recv() (uint32, proto.Msg) {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	pkt, err := p.rd.Next()
	if err != nil {
		p.t.Fatalf("raw peer read: %v", err)
	}
	m, err := proto.Decode(pkt.Code, pkt.Args)
	if err != nil {
		p.t.Fatalf("raw peer decode: %v", err)
	}
	return pkt.ID, m
}

// expectError reads one packet and checks it is Error{PROTOCOL_ERROR, msg} on id.
func (p *rawPeer) expectError(id uint32, msg string) {
	p.t.Helper()
	gotID, m := p.recv()
	e, ok := m.(*proto.Error)
	if !ok || gotID != id || e.Code != proto.CodeProtocolError || e.Message != msg {
		p.t.Fatalf("got %s %+v on id %d, want PROTOCOL_ERROR %q on id %d", proto.Name(m), m, gotID, msg, id)
	}
}

// expectSilence checks nothing arrives for a short while.
func (p *rawPeer) expectSilence(d time.Duration) {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(d))
	pkt, err := p.rd.Next()
	if err == nil {
		p.t.Fatalf("unexpected packet id %d code %#x", pkt.ID, pkt.Code)
	}
	if !isTimeout(err) {
		p.t.Fatalf("raw peer read: %v", err)
	}
	p.nc.SetReadDeadline(time.Time{})
}
