package neonet

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// blocked runs f in a goroutine and returns a channel with its error, after
// checking that f is still blocked a moment later.
func blocked(t *testing.T, f func() error) chan error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	select {
	case err := <-ch:
		t.Fatalf("call returned early: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	return ch
}

func wait(t *testing.T, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("blocked call did not return")
		return nil
	}
}

func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

// Conn.Close interrupts a blocked Recv on that Conn only; the blocked
// receiver may be the one reading the socket (the baton holder) or parked.
func TestCloseVsBlockedRecv(t *testing.T) {
	leakCheck(t)
	eachSetup(t, func(t *testing.T, tr transport, enc proto.Encoding) {
		a, b := linkPair(t, tr, enc, nil)
		go serveObjects(b)
		c1, _ := a.NewConn()
		c2, _ := a.NewConn()
		r1 := blocked(t, func() error { _, err := c1.Recv(); return err }) // takes the baton
		r2 := blocked(t, func() error { _, err := c2.Recv(); return err }) // parks
		c1.Close()
		wantIs(t, wait(t, r1), ErrClosedConn)
		c2.Close()
		wantIs(t, wait(t, r2), ErrClosedConn)
		// Other conns are unaffected.
		c3, _ := a.NewConn()
		if err := c3.Ask(&proto.Ping{}, &proto.Pong{}); err != nil {
			t.Fatal(err)
		}
		wantIs(t, c1.Send(&proto.Ping{}), ErrClosedConn)
		_, err := c1.Recv()
		wantIs(t, err, ErrClosedConn)
	})
}

// NodeLink.Close interrupts everything with ErrLinkClosed.
func TestLinkCloseVsBlocked(t *testing.T) {
	leakCheck(t)
	eachSetup(t, func(t *testing.T, tr transport, enc proto.Encoding) {
		a, b := linkPair(t, tr, enc, nil)
		c1, _ := a.NewConn()
		c2, _ := a.NewConn()
		r1 := blocked(t, func() error { _, err := c1.Recv(); return err })
		r2 := blocked(t, func() error { _, err := c2.Recv(); return err })
		acc := blocked(t, func() error { _, err := a.Accept(); return err })
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		for _, ch := range []chan error{r1, r2, acc} {
			wantIs(t, wait(t, ch), ErrLinkClosed)
		}
		wantIs(t, c1.Send(&proto.Ping{}), ErrLinkClosed)
		_, err := a.NewConn()
		wantIs(t, err, ErrLinkClosed)
		wantIs(t, a.Ask1(&proto.Ping{}, &proto.Pong{}), ErrLinkClosed)
		// The peer notices without a receiver, and every call then reports
		// the failure: ErrLinkDown, carrying the cause.
		select {
		case <-b.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("peer's Done not closed after our Close")
		}
		_, err = b.NewConn()
		wantIs(t, err, ErrLinkDown)
		wantCause(t, b.Err())
		_, err = b.Accept()
		wantIs(t, err, ErrLinkDown)
		wantIs(t, b.Send1(&proto.Ping{}), ErrLinkDown)
	})
}

// A peer that disappears gives every blocked call the real error first.
func TestPeerGone(t *testing.T) {
	leakCheck(t)
	eachSetup(t, func(t *testing.T, tr transport, enc proto.Encoding) {
		a, b := linkPair(t, tr, enc, nil)
		c1, _ := a.NewConn()
		c2, _ := a.NewConn()
		r1 := blocked(t, func() error { _, err := c1.Recv(); return err })
		r2 := blocked(t, func() error { _, err := c2.Recv(); return err })
		b.nc.Close() // crash: no link-level close
		for _, ch := range []chan error{r1, r2} {
			err := wait(t, ch)
			wantIs(t, err, ErrLinkDown)
			wantCause(t, err)
		}
		_, err := c1.Recv()
		wantIs(t, err, ErrLinkDown)
		wantIs(t, c2.Send(&proto.Ping{}), ErrLinkDown)
		select {
		case <-a.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed")
		}
		if a.Err() == nil {
			t.Fatal("Err() = nil on a dead link")
		}
	})
}

func TestCloseAccept(t *testing.T) {
	leakCheck(t)
	eachSetup(t, func(t *testing.T, tr transport, enc proto.Encoding) {
		a, peer := rawPair(t, tr, enc, Listener, nil)
		acc := blocked(t, func() error { _, err := a.Accept(); return err })
		a.CloseAccept()
		wantIs(t, wait(t, acc), ErrLinkNoListen)
		a.CloseAccept() // idempotent
		_, err := a.Recv1()
		wantIs(t, err, ErrLinkNoListen)
		// A new connection from the peer is refused.
		c, _ := a.NewConn()
		go c.Recv() // someone must read for the reply to happen
		peer.send(1, &proto.Ping{})
		peer.expectError(1, "connection refused")
		c.Close()
	})
}

// Packets for closed or unknown connections get "connection closed" on
// their id; Errors are never answered with Errors.
func TestConnectionClosedReplies(t *testing.T) {
	leakCheck(t)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			a, peer := rawPair(t, tr, proto.EncodingN, Listener, nil)
			reading := make(chan struct{})
			go func() {
				close(reading)
				for {
					if _, err := a.Accept(); err != nil {
						return
					}
				}
			}()
			<-reading
			// Our parity (even, we are the listener), never opened.
			peer.send(4, &proto.Ping{})
			peer.expectError(4, "connection closed")
			// An Error on an unknown id: silence.
			peer.send(6, proto.ProtocolError("x"))
			peer.expectSilence(30 * time.Millisecond)
			if s := a.Stats(); s.UnsolicitedErrs != 1 || s.RepliedClosed != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// A peer-opened connection that we closed stays closed: later packets on its
// id get "connection closed" instead of opening a new one, also when the
// peer opened its connections out of order.
func TestClosedIDRemembered(t *testing.T) {
	leakCheck(t)
	a, peer := rawPair(t, transports[1], proto.EncodingN, Listener, nil)
	go func() {
		for {
			c, err := a.Accept()
			if err != nil {
				return
			}
			c.Recv()
			c.Send(&proto.Pong{})
			c.Close()
		}
	}()
	for _, id := range []uint32{1, 5, 3} { // 5 opens before 3: 3 is still new
		peer.send(id, &proto.Ping{})
		if got, m := peer.recv(); got != id || proto.Name(m) != "Pong" {
			t.Fatalf("open %d: got %s on %d", id, proto.Name(m), got)
		}
	}
	for _, id := range []uint32{1, 5, 3} {
		peer.send(id, &proto.Ping{})
		peer.expectError(id, "connection closed")
	}
}

// A Recv1 request's id is remembered after Close too.
func TestRecv1ClosedID(t *testing.T) {
	leakCheck(t)
	a, peer := rawPair(t, transports[1], proto.EncodingN, Listener, nil)
	peer.send(7, &proto.Ping{})
	req, err := a.Recv1()
	if err != nil {
		t.Fatal(err)
	}
	req.Reply(&proto.Pong{})
	req.Close()
	peer.recv()
	go a.Accept()
	peer.send(7, &proto.Ping{})
	peer.expectError(7, "connection closed")
}

// Two conns answered in reverse order each get their own answer.
func TestReverseOrderAnswers(t *testing.T) {
	leakCheck(t)
	eachSetup(t, func(t *testing.T, tr transport, enc proto.Encoding) {
		a, b := linkPair(t, tr, enc, nil)
		go func() {
			c1, err := b.Accept()
			if err != nil {
				return
			}
			c2, err := b.Accept()
			if err != nil {
				return
			}
			m1, _ := c1.Recv()
			o1 := m1.(*proto.AskObject).OID
			m2, _ := c2.Recv()
			o2 := m2.(*proto.AskObject).OID
			c2.Send(&proto.AnswerObject{OID: o2})
			c1.Send(&proto.AnswerObject{OID: o1})
		}()
		c1, _ := a.NewConn()
		c2, _ := a.NewConn()
		c1.Send(&proto.AskObject{OID: 1})
		c2.Send(&proto.AskObject{OID: 2})
		var r1, r2 proto.AnswerObject
		if _, err := c1.Expect(&r1); err != nil || r1.OID != 1 {
			t.Fatalf("c1: %v %v", err, r1.OID)
		}
		if _, err := c2.Expect(&r2); err != nil || r2.OID != 2 {
			t.Fatalf("c2: %v %v", err, r2.OID)
		}
	})
}

// Ask returns an Error answer as a Go error; Expect rejects other messages.
func TestAskErrorAnswer(t *testing.T) {
	leakCheck(t)
	eachSetup(t, func(t *testing.T, tr transport, enc proto.Encoding) {
		a, b := linkPair(t, tr, enc, nil)
		go serveObjects(b)
		c, _ := a.NewConn()
		err := c.Ask(&proto.AskLastTransaction{}, &proto.AnswerLastTransaction{})
		var pe *proto.Error
		if !errors.As(err, &pe) || pe.Code != proto.CodeProtocolError {
			t.Fatalf("Ask err = %v, want *proto.Error", err)
		}
		err = a.Ask1(&proto.AskLastTransaction{}, &proto.AnswerLastTransaction{})
		if !errors.As(err, &pe) {
			t.Fatalf("Ask1 err = %v", err)
		}
		c.Send(&proto.Ping{})
		_, err = c.Expect(&proto.AnswerObject{})
		wantIs(t, err, ErrUnexpected)
	})
}

// Light mode: Send1 is a one-packet notification; the peer's answer to it
// comes after the id is gone and is dropped (counted), never answered.
func TestLightMode(t *testing.T) {
	leakCheck(t)
	eachSetup(t, func(t *testing.T, tr transport, enc proto.Encoding) {
		a, b := linkPair(t, tr, enc, nil)
		got := make(chan error, 1)
		go func() {
			c, err := b.Accept()
			if err != nil {
				got <- err
				return
			}
			m, err := c.Recv()
			if err != nil {
				got <- err
				return
			}
			if _, ok := m.(*proto.Ping); !ok {
				got <- errors.New("not a ping")
				return
			}
			got <- c.Send(&proto.Pong{})
		}()
		if err := a.Send1(&proto.Ping{}); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, got); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for a.Stats().DroppedAnswers != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("late answer not dropped: %+v", a.Stats())
			}
			time.Sleep(time.Millisecond)
		}
		if s := a.Stats(); s.RepliedClosed != 0 {
			t.Fatalf("a late answer was answered: %+v", s)
		}
	})
}

// Recv1: a second packet on a request's id gets "connection closed"; Reply
// after Close fails.
func TestRecv1SecondPacket(t *testing.T) {
	leakCheck(t)
	a, peer := rawPair(t, transports[1], proto.EncodingN, Listener, nil)
	peer.send(1, &proto.AskObject{OID: 3})
	peer.send(1, &proto.Ping{})
	req, err := a.Recv1()
	if err != nil {
		t.Fatal(err)
	}
	if req.Msg.(*proto.AskObject).OID != 3 {
		t.Fatal("wrong request")
	}
	go a.Accept()
	peer.expectError(1, "connection closed")
	if err := req.Reply(&proto.AnswerObject{OID: 3}); err != nil {
		t.Fatal(err)
	}
	if id, m := peer.recv(); id != 1 || m.(*proto.AnswerObject).OID != 3 {
		t.Fatalf("reply: id %d %+v", id, m)
	}
	req.Close()
	wantIs(t, req.Reply(&proto.Pong{}), ErrClosedConn)
	req.Close() // harmless
}

// Light Close racing link shutdown must not corrupt the free list (run with -race).
func TestLightCloseVsLinkShutdown(t *testing.T) {
	leakCheck(t)
	for range 20 {
		a, b := linkPair(t, transports[0], proto.EncodingN, nil)
		go serveLight(b)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if err := a.Ask1(&proto.Ping{}, &proto.Pong{}); err != nil {
						return
					}
				}
			}()
		}
		time.Sleep(2 * time.Millisecond)
		a.Close()
		wg.Wait()
		b.Close()
	}
}

// Send is safe from many goroutines; every packet arrives intact.
func TestConcurrentSend(t *testing.T) {
	leakCheck(t)
	eachSetup(t, func(t *testing.T, tr transport, enc proto.Encoding) {
		a, b := linkPair(t, tr, enc, nil)
		const senders, each = 64, 50
		c, _ := a.NewConn()
		var wg sync.WaitGroup
		for g := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if err := c.Send(&proto.AskObject{OID: proto.Oid(g<<16 | i)}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		sc, err := b.Accept()
		if err != nil {
			t.Fatal(err)
		}
		next := make([]int, senders)
		var m proto.AskObject
		for range senders * each {
			if _, err := sc.Expect(&m); err != nil {
				t.Fatal(err)
			}
			g, i := int(m.OID>>16), int(m.OID&0xffff)
			if next[g] != i {
				t.Fatalf("sender %d: got %d, want %d (per-sender order broken)", g, i, next[g])
			}
			next[g]++
		}
		wg.Wait()
	})
}

// 10,000 conns open at once on one link, each doing one Ask.
func TestManyConns(t *testing.T) {
	leakCheck(t)
	for _, enc := range encodings {
		t.Run(enc.String(), func(t *testing.T) {
			const n = 10000
			cfg := DefaultConfig()
			cfg.AcceptBacklog = n // all open at once: beyond the backlog they would be refused
			a, b := linkPair(t, transports[1], enc, cfg)
			go serveObjects(b)
			conns := make([]*Conn, n)
			for i := range conns {
				c, err := a.NewConn()
				if err != nil {
					t.Fatal(err)
				}
				conns[i] = c
			}
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var r proto.AnswerObject
					if err := c.Ask(&proto.AskObject{OID: proto.Oid(i)}, &r); err != nil || r.OID != proto.Oid(i) {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("ask: %v", err)
			}
			if s := a.Stats(); s.OpenConns != n {
				t.Fatalf("open conns %d, want %d", s.OpenConns, n)
			}
			for _, c := range conns {
				c.Close()
			}
			if s := a.Stats(); s.OpenConns != 0 {
				t.Fatalf("open conns after close: %d", s.OpenConns)
			}
		})
	}
}

// A Conn whose reader stalls must not stall the link: with one Conn never
// reading while the peer floods it, 10,000 Asks on another Conn complete,
// and the stalled Conn is aborted alone, with a clear error on both sides.
func TestStalledReaderIsolation(t *testing.T) {
	leakCheck(t)
	for _, enc := range encodings {
		t.Run(enc.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ConnRecvBuffer = 64 << 10
			cfg.LinkRecvBuffer = 1 << 20
			a, b := linkPair(t, transports[1], enc, cfg)
			go serveObjects(b)
			// The peer opens a conn to us and sends far more than its bound;
			// we never read it.
			flood := make(chan error, 1)
			go func() {
				c, err := b.NewConn()
				if err != nil {
					flood <- err
					return
				}
				msg := &proto.AskStoreObject{Data: make([]byte, 1000)}
				for range 2000 {
					if err := c.Send(msg); err != nil {
						flood <- err
						return
					}
				}
				// The peer learns its conn was aborted.
				var r proto.AnswerStoreObject
				_, err = c.Expect(&r)
				flood <- err
			}()
			stalled, err := a.Accept()
			if err != nil {
				t.Fatal(err)
			}
			c, _ := a.NewConn()
			var r proto.AnswerObject
			for i := range 10000 {
				if err := c.Ask(&proto.AskObject{OID: proto.Oid(i)}, &r); err != nil {
					t.Fatalf("ask %d: %v", i, err)
				}
			}
			if s := a.Stats(); s.QueuedBytes > cfg.LinkRecvBuffer+proto.MaxPacketSize {
				t.Fatalf("queued %d bytes", s.QueuedBytes)
			}
			_, err = stalled.Recv()
			wantIs(t, err, ErrConnOverflow)
			var pe *proto.Error
			if err := wait(t, flood); !errors.As(err, &pe) || pe.Message != "receive queue overflow" {
				t.Fatalf("peer of the aborted conn got %v", err)
			}
			if s := a.Stats(); s.Overflows != 1 {
				t.Fatalf("overflows = %d", s.Overflows)
			}
		})
	}
}

// Oversized packets: refused on send with an error to the caller, and on
// receive (checked before allocation) by closing the link.
func TestPacketSizeLimits(t *testing.T) {
	leakCheck(t)
	cfg := DefaultConfig()
	cfg.MaxPacketSize = 4096
	for _, enc := range encodings {
		t.Run(enc.String(), func(t *testing.T) {
			a, peer := rawPair(t, transports[1], enc, Dialer, cfg)
			c, _ := a.NewConn()
			err := c.Send(&proto.AnswerObject{Data: make([]byte, 5000)})
			wantIs(t, err, proto.ErrPacketTooBig)
			if err := c.Send(&proto.Ping{}); err != nil {
				t.Fatal("link unusable after refusing an oversized send:", err)
			}
			peer.recv()
			big, _ := proto.AppendPacket(nil, enc, 1, &proto.AnswerObject{Data: make([]byte, 5000)}, 0)
			go peer.nc.Write(big)
			_, err = c.Recv()
			wantIs(t, err, proto.ErrPacketTooBig)
			_, err = c.Recv()
			wantIs(t, err, ErrLinkDown)
		})
	}
}

// Garbage after the handshake takes the link down with a framing error; a
// peer killed mid-packet gives io.ErrUnexpectedEOF.
func TestBadInput(t *testing.T) {
	leakCheck(t)
	for _, enc := range encodings {
		t.Run(enc.String()+"/garbage", func(t *testing.T) {
			a, peer := rawPair(t, transports[1], enc, Dialer, nil)
			c, _ := a.NewConn()
			peer.write([]byte{0xc1, 0xc1, 0xc1, 0xc1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			_, err := c.Recv()
			var fe *proto.FrameError
			if enc == proto.EncodingM && !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a framing error", err)
			}
			if err == nil {
				t.Fatal("garbage accepted")
			}
		})
		t.Run(enc.String()+"/cut", func(t *testing.T) {
			a, peer := rawPair(t, transports[1], enc, Dialer, nil)
			c, _ := a.NewConn()
			pkt, _ := proto.AppendPacket(nil, enc, 1, &proto.AnswerObject{Data: make([]byte, 100)}, 0)
			peer.write(pkt[:len(pkt)/2])
			peer.nc.Close()
			_, err := c.Recv()
			wantIs(t, err, io.ErrUnexpectedEOF)
		})
	}
}

// Unknown codes and bad args fail that one Recv; the link stays up.
func TestDecodeErrorKeepsLink(t *testing.T) {
	leakCheck(t)
	a, peer := rawPair(t, transports[1], proto.EncodingN, Dialer, nil)
	c, _ := a.NewConn()
	c.Send(&proto.Ping{})
	peer.recv()
	peer.write(proto.AppendPacketArgs(nil, proto.EncodingN, c.ID(), 999, []byte{0x90}))
	peer.write(proto.AppendPacketArgs(nil, proto.EncodingN, c.ID(), 0x8002, []byte{0x91, 0x01}))
	peer.send(c.ID(), &proto.Pong{})
	_, err := c.Recv()
	wantIs(t, err, proto.ErrUnknownCode)
	_, err = c.Recv()
	var de *proto.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v, want DecodeError", err)
	}
	if m, err := c.Recv(); err != nil || proto.Name(m) != "Pong" {
		t.Fatalf("after decode errors: %v %v", m, err)
	}
}

// Context variants return ctx.Err() for the reader and for a parked waiter,
// and leave the link usable.
func TestContextCancel(t *testing.T) {
	leakCheck(t)
	eachSetup(t, func(t *testing.T, tr transport, enc proto.Encoding) {
		a, b := linkPair(t, tr, enc, nil)
		go serveObjects(b)
		c1, _ := a.NewConn()
		c2, _ := a.NewConn()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		errs := make(chan error, 3)
		go func() { _, err := c1.RecvContext(ctx); errs <- err }()
		go func() { _, err := c2.RecvContext(ctx); errs <- err }()
		go func() { _, err := a.AcceptContext(ctx); errs <- err }()
		for range 3 {
			wantIs(t, wait(t, errs), context.DeadlineExceeded)
		}
		if err := c1.AskContext(context.Background(), &proto.Ping{}, &proto.Pong{}); err != nil {
			t.Fatal(err)
		}
		ctx2, cancel2 := context.WithCancel(context.Background())
		cancel2()
		wantIs(t, a.Ask1Context(ctx2, &proto.Ping{}, &proto.Pong{}), context.Canceled)
	})
}

// Accept backlog: beyond it, new connections are refused at once.
func TestAcceptBacklog(t *testing.T) {
	leakCheck(t)
	cfg := DefaultConfig()
	cfg.AcceptBacklog = 3
	a, peer := rawPair(t, transports[1], proto.EncodingN, Listener, cfg)
	c, _ := a.NewConn()
	go c.Recv() // reads for the link, but never accepts
	for id := uint32(1); id <= 9; id += 2 {
		peer.send(id, &proto.Ping{})
	}
	peer.expectError(7, "connection refused")
	peer.expectError(9, "connection refused")
	if s := a.Stats(); s.AcceptBacklog != 3 || s.RepliedRefused != 2 {
		t.Fatalf("stats %+v", s)
	}
	c.Close()
}

// Graceful shutdown lets an in-flight Ask finish, refuses new conns, then closes.
func TestShutdown(t *testing.T) {
	leakCheck(t)
	a, b := linkPair(t, transports[1], proto.EncodingN, nil)
	release := make(chan struct{})
	go func() {
		c, err := b.Accept()
		if err != nil {
			return
		}
		c.Recv()
		<-release
		c.Send(&proto.Pong{})
		c.Close()
	}()
	c, _ := a.NewConn()
	asked := make(chan error, 1)
	go func() { asked <- c.Ask(&proto.Ping{}, &proto.Pong{}) }()
	time.Sleep(20 * time.Millisecond)
	shut := make(chan error, 1)
	go func() {
		err := b.Shutdown(context.Background())
		shut <- err
	}()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := wait(t, asked); err != nil {
		t.Fatalf("in-flight ask: %v", err)
	}
	c.Close()
	if err := wait(t, shut); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// Shutdown bounded by a context: what is unfinished gets an error.
	a2, b2 := linkPair(t, transports[1], proto.EncodingN, nil)
	c2, _ := a2.NewConn()
	c2.Send(&proto.Ping{})
	if _, err := b2.Accept(); err != nil { // an open conn the shutdown must wait for
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	wantIs(t, b2.Shutdown(ctx), context.DeadlineExceeded)
	wantIs(t, b2.Err(), ErrLinkClosed)
}

func TestKeepAlive(t *testing.T) {
	leakCheck(t)
	cfg := DefaultConfig()
	cfg.KeepAlive = 20 * time.Millisecond
	cfg.KeepAliveTimeout = 50 * time.Millisecond
	// A peer that answers pings keeps the link up.
	peerCfg := DefaultConfig()
	peerCfg.AnswerPing = true
	a, b := keepAlivePair(t, cfg, peerCfg)
	go b.Accept()
	time.Sleep(150 * time.Millisecond)
	if a.Err() != nil {
		t.Fatalf("link with an answering peer went down: %v", a.Err())
	}
	if s := b.Stats(); s.PacketsIn == 0 {
		t.Fatal("no keepalive ping was sent")
	}
	// A silent peer gets the link closed with a clear error.
	a2, _ := keepAlivePair(t, cfg, DefaultConfig())
	select {
	case <-a2.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("keepalive did not take the link down")
	}
	var le *LinkError
	if !errors.As(a2.Err(), &le) || le.Op != "keepalive" {
		t.Fatalf("err = %v, want keepalive LinkError", a2.Err())
	}
}

func keepAlivePair(t *testing.T, ca, cb *Config) (*NodeLink, *NodeLink) {
	x, y := net.Pipe()
	ctx := context.Background()
	ch := make(chan *NodeLink, 1)
	go func() {
		l, err := NewLink(ctx, y, Listener, cb)
		if err != nil {
			t.Error(err)
		}
		ch <- l
	}()
	a, err := NewLink(ctx, x, Dialer, ca)
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// Regression: a Conn queued for accepting and then aborted for overflow
// must not crash Recv1; Recv1 moves on to the next request.
func TestRecv1AfterAbortedQueuedConn(t *testing.T) {
	leakCheck(t)
	cfg := DefaultConfig()
	cfg.ConnRecvBuffer, cfg.LinkRecvBuffer = 64, 64
	a, peer := rawPair(t, transports[1], proto.EncodingN, Listener, cfg)
	c, _ := a.NewConn()
	r := blocked(t, func() error { _, err := c.Recv(); return err }) // reads for the link
	peer.send(1, &proto.Ping{})
	peer.send(1, &proto.AnswerObject{Data: make([]byte, 100)}) // overflows conn 1
	peer.expectError(1, "receive queue overflow")
	peer.send(3, &proto.AskObject{OID: 3})
	req, err := a.Recv1()
	if err != nil {
		t.Fatal(err)
	}
	if req.ID() != 3 {
		t.Fatalf("Recv1 returned id %d, want 3", req.ID())
	}
	req.Close()
	c.Close()
	wait(t, r)
}

// Regression: conns refused from the backlog by CloseAccept leave the
// tables, so Shutdown does not wait for them.
func TestShutdownAfterRefusedBacklog(t *testing.T) {
	leakCheck(t)
	a, peer := rawPair(t, transports[1], proto.EncodingN, Listener, nil)
	pkt, _ := proto.AppendPacket(nil, proto.EncodingN, 1, &proto.Ping{}, 0)
	pkt, _ = proto.AppendPacket(pkt, proto.EncodingN, 3, &proto.Ping{}, 0)
	peer.write(pkt)
	c, err := a.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// wantCause checks that a link failure carries a cause beyond the sentinels.
func wantCause(t *testing.T, err error) {
	t.Helper()
	var de *downError
	if !errors.As(err, &de) || de.cause == nil || errors.Is(de.cause, ErrLinkClosed) {
		t.Fatalf("error %v carries no cause", err)
	}
}
