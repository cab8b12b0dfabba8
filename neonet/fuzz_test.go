package neonet

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/proto"
)

// FuzzNodeLink feeds arbitrary bytes, after a valid handshake, to the
// listener side of a link over net.Pipe while an application accepts and
// answers on it, then closes the peer. The first input byte picks the setup
// (see fuzzSetup); the rest is the stream, written in chunks of the size it
// also picks. It checks that:
//   - the link routes exactly the complete packets a reference
//     proto.PacketReader parses from the same bytes (Stats.PacketsIn), and
//     the application receives them in order and intact: exactly those the
//     routing rules deliver with default bounds, a subsequence of them when
//     bounds are tight and the application closes Conns early;
//   - the link never stops reading: every write of the peer is taken, every
//     packet is routed without the peer closing, and the link goes down
//     (Done, with the cause the stream implies) once the peer closes;
//   - what the link writes back is well framed and decodable;
//   - after Close nothing stays queued or open and no goroutine is left.
func FuzzNodeLink(f *testing.F) {
	for _, s := range fuzzLinkSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(fuzzNodeLink)
}

// fuzzSetup is what the first input byte selects.
type fuzzSetup struct {
	enc   proto.Encoding
	light bool // the application uses Recv1/Reply, else Accept/Recv/Send
	// tight: small receive and send bounds, a small packet limit, a small
	// backlog, and an application that closes Conns early, opens its own
	// Conns and stops accepting after two.
	tight bool
	chunk int // the peer writes the stream in pieces of this size; 0: at once
}

var fuzzChunks = [8]int{0, 1, 2, 3, 7, 16, 100, 4096}

func parseFuzzSetup(b byte) fuzzSetup {
	s := fuzzSetup{enc: proto.EncodingN, light: b&2 != 0, tight: b&4 != 0, chunk: fuzzChunks[b>>3&7]}
	if b&1 != 0 {
		s.enc = proto.EncodingM
	}
	return s
}

func (s fuzzSetup) config() *Config {
	cfg := DefaultConfig()
	if s.tight {
		cfg.MaxPacketSize = 512
		cfg.ConnRecvBuffer = 1024
		cfg.LinkRecvBuffer = 4096
		cfg.AcceptBacklog = 2
		cfg.SendBuffer = 256
	}
	return cfg
}

// fzPkt is a packet as the reference parsed it or as the application
// received it: its message re-encoded canonically, or bad if it did not
// decode (the code of a received bad packet is unknown).
type fzPkt struct {
	id    uint32
	code  uint16
	canon []byte
	bad   bool
}

func (p fzPkt) same(o fzPkt) bool {
	return p.bad == o.bad && (p.bad || p.code == o.code && bytes.Equal(p.canon, o.canon))
}

func fuzzRefPacket(id uint32, code uint16, args []byte) fzPkt {
	m, err := proto.Decode(code, args)
	if err != nil {
		return fzPkt{id: id, code: code, bad: true}
	}
	return fzPkt{id: id, code: code, canon: m.AppendArgs(nil)}
}

func fuzzGotPacket(id uint32, m proto.Msg) fzPkt {
	return fzPkt{id: id, code: m.MsgCode(), canon: m.AppendArgs(nil)}
}

// fuzzReferenceParse returns the complete packets of stream and the error that
// ends it (io.EOF, io.ErrUnexpectedEOF or a *proto.FrameError).
func fuzzReferenceParse(stream []byte, enc proto.Encoding, max int) ([]fzPkt, error) {
	r := proto.NewPacketReader(bytes.NewReader(stream), enc, max, nil)
	var pkts []fzPkt
	for {
		p, err := r.Next()
		if err != nil {
			return pkts, err
		}
		pkts = append(pkts, fuzzRefPacket(p.ID, p.Code, p.Args))
	}
}

// fuzzObs collects what the application received, per connection id, in
// the order it received it.
type fuzzObs struct {
	mu   sync.Mutex
	byID map[uint32][]fzPkt
	n    int
	errs []string
}

func (o *fuzzObs) add(p fzPkt) {
	o.mu.Lock()
	o.byID[p.id] = append(o.byID[p.id], p)
	o.n++
	o.mu.Unlock()
}

// bad records an error the application should never see.
func (o *fuzzObs) bad(format string, err error) {
	o.mu.Lock()
	o.errs = append(o.errs, format+": "+err.Error())
	o.mu.Unlock()
}

// fuzzEndErr reports whether err is an acceptable way for a receiving call to
// end: the link or the Conn is closed or down, or accepting stopped.
func fuzzEndErr(err error) bool {
	for _, e := range []error{ErrLinkDown, ErrLinkClosed, ErrClosedConn, ErrConnOverflow, ErrLinkNoListen} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// fuzzReply is the application's answer: small, so that it fits the tight
// packet limit.
func fuzzReply(m proto.Msg) proto.Msg {
	switch m := m.(type) {
	case *proto.AskObject:
		return &proto.AnswerObject{OID: m.OID, Serial: 1, Data: []byte("data")}
	case *proto.Ping:
		return &proto.Pong{}
	}
	return proto.ProtocolError("unexpected")
}

// fuzzApp runs the application on l until the link ends.
func fuzzApp(l *NodeLink, s fuzzSetup, obs *fuzzObs, wg *sync.WaitGroup) {
	defer wg.Done()
	if s.light {
		for n := 0; ; n++ {
			req, err := l.Recv1()
			if err != nil {
				var ce *ConnError
				if errors.As(err, &ce) && ce.Op == "decode" {
					obs.add(fzPkt{id: ce.ConnID, bad: true})
					continue
				}
				if !fuzzEndErr(err) {
					obs.bad("Recv1", err)
				}
				return
			}
			obs.add(fuzzGotPacket(req.ID(), req.Msg))
			if !s.tight || req.ID()%3 != 0 {
				req.Reply(fuzzReply(req.Msg))
			}
			req.Close()
			if s.tight && n == 2 {
				l.CloseAccept()
			}
		}
	}
	for n := 0; ; n++ {
		c, err := l.Accept()
		if err != nil {
			if !fuzzEndErr(err) {
				obs.bad("Accept", err)
			}
			return
		}
		if s.tight && n == 2 {
			l.CloseAccept()
		}
		wg.Add(1)
		go fuzzServeConn(l, c, s, obs, wg)
	}
}

// fuzzServeConn receives on a peer-opened Conn and answers each message.
// Under tight bounds it closes the Conn after id%5 messages (never for 0)
// and opens a Conn of its own for some ids.
func fuzzServeConn(l *NodeLink, c *Conn, s fuzzSetup, obs *fuzzObs, wg *sync.WaitGroup) {
	defer wg.Done()
	defer c.Close()
	limit := 0
	if s.tight {
		limit = int(c.ID() % 5)
	}
	for k := 1; ; k++ {
		m, err := c.Recv()
		var ce *ConnError
		switch {
		case errors.As(err, &ce) && ce.Op == "decode":
			obs.add(fzPkt{id: c.ID(), bad: true})
		case err != nil:
			if !fuzzEndErr(err) {
				obs.bad("Recv", err)
			}
			return
		default:
			obs.add(fuzzGotPacket(c.ID(), m))
			if err := c.Send(fuzzReply(m)); err != nil && !fuzzEndErr(err) && !errors.Is(err, io.ErrClosedPipe) {
				obs.bad("Send", err)
			}
		}
		if s.tight && k == 1 && c.ID()%7 == 1 {
			if lc, err := l.NewConn(); err == nil {
				lc.Send(&proto.Ping{})
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer lc.Close()
					for {
						if _, err := lc.Recv(); err != nil && !fuzzDecodeErr(err) {
							return
						}
					}
				}()
			}
		}
		if limit > 0 && k >= limit {
			return
		}
	}
}

func fuzzDecodeErr(err error) bool {
	var ce *ConnError
	return errors.As(err, &ce) && ce.Op == "decode"
}

// fuzzWaitFor polls cond until it holds or d passes.
func fuzzWaitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Microsecond)
	}
	return true
}

func fuzzWaitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func fuzzStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// fuzzStall bounds every wait of one input: far above what a working link
// needs (milliseconds), so that only a stuck link trips it.
const fuzzStall = 5 * time.Second

func fuzzNodeLink(t *testing.T, data []byte) {
	if len(data) == 0 {
		data = []byte{0}
	}
	s := parseFuzzSetup(data[0])
	stream := data[1:]
	cfg := s.config()
	ref, refErr := fuzzReferenceParse(stream, s.enc, cfg.MaxPacketSize)
	baseline := runtime.NumGoroutine()

	peer, nc := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), fuzzStall)
	defer cancel()
	hsErr := make(chan error, 1)
	go func() { hsErr <- handshake.Dial(ctx, peer, s.enc) }()
	l, err := NewLink(ctx, nc, Listener, cfg)
	if err != nil {
		peer.Close()
		t.Fatalf("handshake: %v", err)
	}
	if err := <-hsErr; err != nil {
		l.Close()
		peer.Close()
		t.Fatalf("peer handshake: %v", err)
	}
	if l.Encoding() != s.enc {
		t.Errorf("detected %v, want %v", l.Encoding(), s.enc)
	}

	// The peer reads what the link writes back: it must be well framed and
	// decodable.
	outErr := make(chan error, 1)
	go func() {
		rd := proto.NewPacketReader(peer, s.enc, 0, nil)
		for {
			p, err := rd.Next()
			if err != nil {
				if errors.Is(err, io.ErrClosedPipe) || errors.Is(err, io.EOF) {
					err = nil
				}
				outErr <- err
				return
			}
			if _, err := proto.Decode(p.Code, p.Args); err != nil {
				outErr <- err
				return
			}
		}
	}()

	obs := &fuzzObs{byID: make(map[uint32][]fzPkt)}
	var app sync.WaitGroup
	app.Add(1)
	go fuzzApp(l, s, obs, &app)

	cleanup := func() {
		peer.Close()
		l.Close()
		fuzzWaitGroup(&app, fuzzStall)
	}
	peer.SetWriteDeadline(time.Now().Add(fuzzStall))
	for rest := stream; len(rest) > 0; {
		n := len(rest)
		if s.chunk > 0 {
			n = min(n, s.chunk)
		}
		if _, err := peer.Write(rest[:n]); err != nil {
			if isTimeout(err) {
				stacks := fuzzStacks()
				cleanup()
				t.Fatalf("link stopped reading: %d bytes not taken\n%s", len(rest), stacks)
			}
			break // the link went down (bad framing, overflow...) and closed its end
		}
		rest = rest[n:]
	}
	// Every complete packet is routed without the peer closing: the link
	// reads on its own whatever the application does.
	if !fuzzWaitFor(fuzzStall, func() bool {
		select {
		case <-l.Done():
			return true
		default:
		}
		return l.Stats().PacketsIn >= uint64(len(ref))
	}) {
		stacks := fuzzStacks()
		got := l.Stats().PacketsIn
		cleanup()
		t.Fatalf("link routed %d of %d packets and stays up\n%s", got, len(ref), stacks)
	}
	peer.Close()
	select {
	case <-l.Done():
	case <-time.After(fuzzStall):
		stacks := fuzzStacks()
		cleanup()
		t.Fatalf("link still up %v after the peer closed\n%s", fuzzStall, stacks)
	}
	if !fuzzWaitGroup(&app, fuzzStall) {
		stacks := fuzzStacks()
		cleanup()
		t.Fatalf("application calls still blocked on a link that is down\n%s", stacks)
	}
	if err := <-outErr; err != nil {
		t.Errorf("link wrote a bad packet: %v", err)
	}
	for _, e := range obs.errs {
		t.Errorf("application got %s", e)
	}

	linkErr := l.Err()
	st := l.Stats()
	fuzzCheckCause(t, linkErr, refErr)
	acceptOverflow := errors.Is(linkErr, ErrAcceptOverflow)
	switch {
	case acceptOverflow && st.PacketsIn > uint64(len(ref)):
		t.Errorf("link routed %d packets, the reference parses %d", st.PacketsIn, len(ref))
	case !acceptOverflow && st.PacketsIn != uint64(len(ref)):
		t.Errorf("link routed %d packets, the reference parses %d (ends with %v; link: %v)", st.PacketsIn, len(ref), refErr, linkErr)
	}
	if uint64(obs.n) > st.PacketsIn {
		t.Errorf("application received %d packets, link routed %d", obs.n, st.PacketsIn)
	}
	exact := !s.tight && st.RepliedRefused == 0 && st.Overflows == 0 && !acceptOverflow
	fuzzCheckDelivery(t, s, ref, obs.byID, exact)

	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if st := l.Stats(); st.QueuedBytes != 0 || st.OpenConns != 0 || st.AcceptBacklog != 0 {
		t.Errorf("after Close: %d bytes queued, %d conns open, %d in backlog", st.QueuedBytes, st.OpenConns, st.AcceptBacklog)
	}
	if !fuzzWaitFor(fuzzStall, func() bool { return runtime.NumGoroutine() <= baseline }) {
		t.Fatalf("%d goroutines left after Close (baseline %d)\n%s", runtime.NumGoroutine(), baseline, fuzzStacks())
	}
}

// fuzzCheckCause checks that the link went down for the reason the stream
// implies: the peer's close at a packet boundary, a truncated packet, or a
// framing error. A notification refused by a full backlog, or a write that
// failed because the peer had closed, may take it down first.
func fuzzCheckCause(t *testing.T, linkErr, refErr error) {
	t.Helper()
	if !errors.Is(linkErr, ErrLinkDown) {
		t.Errorf("link error %v, want ErrLinkDown", linkErr)
		return
	}
	if errors.Is(linkErr, ErrAcceptOverflow) || errors.Is(linkErr, io.ErrClosedPipe) {
		return
	}
	var fe *proto.FrameError
	switch {
	case refErr == io.EOF:
		if !errors.Is(linkErr, errPeerClosed) {
			t.Errorf("stream ends at a packet boundary; link down with %v", linkErr)
		}
	case refErr == io.ErrUnexpectedEOF:
		if !errors.Is(linkErr, io.ErrUnexpectedEOF) {
			t.Errorf("stream ends inside a packet; link down with %v", linkErr)
		}
	case errors.As(refErr, &fe):
		var lfe *proto.FrameError
		if !errors.As(linkErr, &lfe) || lfe.Offset != fe.Offset ||
			errors.Is(lfe, proto.ErrPacketTooBig) != errors.Is(fe, proto.ErrPacketTooBig) {
			t.Errorf("reference fails with %v; link down with %v", refErr, linkErr)
		}
	default:
		t.Errorf("reference parse ended with %v", refErr)
	}
}

// fuzzPeerRouted reports whether a packet from the peer goes to a Conn the peer
// opened (the only Conns the application records), as the listener routes.
func fuzzPeerRouted(enc proto.Encoding, p fzPkt) bool {
	if enc == proto.EncodingN {
		return p.id&1 == 1 // the dialer's parity
	}
	return !proto.IsAnswer(p.code)
}

// fuzzCheckDelivery compares what the application received with the
// reference packets. Always: per id, the received packets are a
// subsequence of the peer-routed reference packets on that id. When exact
// (default bounds, nothing refused or aborted), they are exactly the packets
// the routing rules deliver, modelled here from the documented rules.
func fuzzCheckDelivery(t *testing.T, s fuzzSetup, ref []fzPkt, got map[uint32][]fzPkt, exact bool) {
	t.Helper()
	cand := make(map[uint32][]fzPkt)
	for _, p := range ref {
		if fuzzPeerRouted(s.enc, p) {
			cand[p.id] = append(cand[p.id], p)
		}
	}
	for id, g := range got {
		if !fuzzSubsequence(g, cand[id]) {
			t.Errorf("id %d: received %s, not in order among the reference's %s", id, fuzzDescribe(g), fuzzDescribe(cand[id]))
		}
	}
	if !exact {
		return
	}
	want := make(map[uint32][]fzPkt)
	var win idWindow
	open := make(map[uint32]bool)
	for _, p := range ref {
		if !fuzzPeerRouted(s.enc, p) {
			continue
		}
		switch {
		case s.enc == proto.EncodingM && s.light:
			// One request per id until its Request is closed, which races
			// with what follows: only the first is certain.
			if !open[p.id] {
				open[p.id] = true
				want[p.id] = append(want[p.id], p)
			}
			continue
		case s.enc == proto.EncodingM:
		case open[p.id] && !s.light:
		case win.seen(p.id) || p.code == proto.AnswerBit:
			continue
		default:
			win.mark(p.id)
			open[p.id] = true
		}
		want[p.id] = append(want[p.id], p)
	}
	for id, w := range want {
		g := got[id]
		if s.enc == proto.EncodingM && s.light {
			if len(g) == 0 || !g[0].same(w[0]) {
				t.Errorf("id %d: first request %s, want %s", id, fuzzDescribe(g), fuzzDescribe(w))
			}
			continue
		}
		if len(g) != len(w) || !fuzzSubsequence(g, w) {
			t.Errorf("id %d: received %s, want %s", id, fuzzDescribe(g), fuzzDescribe(w))
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("id %d: received %s, want nothing", id, fuzzDescribe(g))
		}
	}
}

// fuzzSubsequence reports whether g appears in w in order.
func fuzzSubsequence(g, w []fzPkt) bool {
	i := 0
	for _, p := range w {
		if i < len(g) && g[i].same(p) {
			i++
		}
	}
	return i == len(g)
}

func fuzzDescribe(ps []fzPkt) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		if p.bad {
			b.WriteString("bad")
		} else {
			b.WriteString(proto.NameOf(p.code))
		}
	}
	b.WriteByte(']')
	return b.String()
}

// fuzzSpecVectors are the NEO/py master encodings of the protocol's
// reference messages (the vectors proto's own fuzz targets start from),
// whole M packets, with the message each encodes, for N.
var fuzzSpecVectors = []struct {
	id  uint32
	msg proto.Msg
	hex string
}{
	{0, &proto.Ping{}, "93 00 02 90"},
	{0, &proto.Pong{}, "93 00 cd 80 02 90"},
	{5, &proto.CloseClient{}, "93 05 03 90"},
	{3, proto.ProtocolError("connection closed"),
		"93 03 cd 80 00 92 06 c4 11 63 6f 6e 6e 65 63 74 69 6f 6e 20 63 6c 6f 73 65 64"},
	{1, proto.Ack(""), "93 01 cd 80 00 92 00 c4 00"},
	{0, &proto.RequestIdentification{NodeType: proto.Client, Name: "test"},
		"93 00 01 96 d4 04 02 c0 c0 c4 04 74 65 73 74 c0 80"},
	{0, &proto.AcceptIdentification{NodeType: proto.Master, UUID: proto.Some[proto.NodeID](-0x0fffffff), YourUUID: proto.Some[proto.NodeID](1)},
		"93 00 cd 80 01 93 d4 04 00 d2 f0 00 00 01 01"},
	{9, &proto.AskObject{OID: 1, Before: proto.Some[proto.Tid](5)},
		"93 09 20 93 c4 08 00 00 00 00 00 00 00 01 c0 c4 08 00 00 00 00 00 00 00 05"},
	{0xffffffff, &proto.AskLastTransaction{}, "93 ce ff ff ff ff 3c 90"},
}

// fuzzLinkSeeds returns the spec vectors, one per input, and a few valid
// multi-packet streams (also truncated, and followed by garbage), under
// several setups.
func fuzzLinkSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	add := func(setup byte, stream []byte) {
		seeds = append(seeds, append([]byte{setup}, stream...))
	}
	for _, v := range fuzzSpecVectors {
		m, err := hex.DecodeString(strings.ReplaceAll(v.hex, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		add(1, m)
		add(1|2, m)
		n, err := proto.AppendPacket(nil, proto.EncodingN, v.id, v.msg, 0)
		if err != nil {
			t.Fatal(err)
		}
		add(0, n)
		add(2, n)
	}
	streams := []struct {
		id  uint32
		msg proto.Msg
	}{
		{1, &proto.Ping{}},
		{1, &proto.AskObject{OID: 7}},
		{3, &proto.AskObject{OID: 8}},
		{2, &proto.Pong{}},                      // on an id of the listener's parity
		{5, proto.ProtocolError("unsolicited")}, // an Error on a new id
		{3, &proto.AskObject{OID: 9}},
		{7, &proto.NotifyReady{}},
		{1, &proto.AnswerObject{OID: 7, Data: []byte("x")}},
		{9, &proto.AskLastTransaction{}},
		{11, &proto.Ping{}},
		{13, &proto.Ping{}},
		{15, &proto.Ping{}},
	}
	for _, enc := range encodings {
		var b []byte
		for _, p := range streams {
			var err error
			if b, err = proto.AppendPacket(b, enc, p.id, p.msg, 0); err != nil {
				t.Fatal(err)
			}
		}
		e := byte(0)
		if enc == proto.EncodingM {
			e = 1
		}
		for _, setup := range []byte{0, 2, 4, 6, 8, 2 | 16, 4 | 40, 6 | 56} {
			add(e|setup, b)
		}
		add(e, b[:len(b)-3])
		add(e|2, append(b[:len(b):len(b)], 0xc1, 0xff, 0, 0, 0, 9, 9, 9, 9, 9, 9))
	}
	return seeds
}
