package neonet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/proto"
)

// Tests for faults and abuse: bounded memory, honest shutdown, keepalive,
// callbacks, closing, and no desynchronization.

// heapInUse returns the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

var codeAnswerObject = (*proto.AnswerObject)(nil).MsgCode()

// The receive bounds count memory, not payload bytes: a flood of empty (N)
// or 1-byte (M) packets for a Conn nobody reads is charged, overflows the
// Conn, and the heap stays within a small factor of the bound.
func TestRecvBoundCountsMemory(t *testing.T) {
	leakCheck(t)
	cases := []struct {
		name string
		enc  proto.Encoding
		args []byte
	}{
		{"N-empty", proto.EncodingN, nil},
		{"M-1byte", proto.EncodingM, []byte{0x90}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const bound = 512 << 10
			const total, batch = 200_000, 4000
			cfg := DefaultConfig()
			cfg.ConnRecvBuffer, cfg.LinkRecvBuffer = bound, bound
			l, p := rawPair(t, transports[1], tc.enc, Dialer, cfg)
			go l.Accept() // a server's accept loop; it never takes the flood
			c, err := l.NewConn()
			if err != nil {
				t.Fatal(err)
			}
			pkt := proto.AppendPacketArgs(nil, tc.enc, c.ID(), codeAnswerObject, tc.args)
			var flood []byte
			for range batch {
				flood = append(flood, pkt...)
			}
			// A handful of such packets is charged.
			const few = 10
			for range few {
				p.write(pkt)
			}
			waitFor(t, 5*time.Second, "the first packets", func() bool { return l.Stats().PacketsIn == few })
			if s := l.Stats(); s.QueuedBytes < few*(len(tc.args)+1) {
				t.Fatalf("%d queued packets charged %d bytes", few, s.QueuedBytes)
			}
			h0 := heapInUse()
			var peak int64
			for sent := few; sent < total; {
				p.write(flood)
				sent += batch
				waitFor(t, 10*time.Second, "the flood to be read", func() bool { return l.Stats().PacketsIn == uint64(sent) })
				growth := heapInUse() - h0
				peak = max(peak, growth)
				if growth > 4*bound {
					t.Fatalf("after %d packets the heap grew by %d bytes, over 4 × the bound %d (stats %+v)",
						sent, growth, bound, l.Stats())
				}
			}
			t.Logf("%d packets: heap grew at most %d bytes (bound %d)", total, peak, bound)
			s := l.Stats()
			if s.Overflows != 1 {
				t.Fatalf("overflows = %d, want 1 (stats %+v)", s.Overflows, s)
			}
			_, err = c.Recv()
			wantIs(t, err, ErrConnOverflow)
		})
	}
}

// packetArgs returns the encoded args of m, as a receiver gets them.
func packetArgs(t *testing.T, m proto.Msg) []byte {
	t.Helper()
	pkt, err := proto.AppendPacket(nil, proto.EncodingN, 1, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proto.NewPacketReader(bytes.NewReader(pkt), proto.EncodingN, 0, nil).Next()
	if err != nil {
		t.Fatal(err)
	}
	return p.Args
}

// The link-wide bound aborts the Conn holding the most, never a Conn that
// keeps up: two Conns nobody reads hold almost the whole bound, and the
// two small packets of an active Conn cross it. The active Conn's receiver
// is in Recv while they arrive, or calls it once they are all queued.
func TestLinkBoundAbortsHog(t *testing.T) {
	leakCheck(t)
	for _, receiving := range []bool{true, false} {
		name := "receiver-in-recv"
		if !receiving {
			name = "receiver-after"
		}
		t.Run(name, func(t *testing.T) {
			codeStore := (*proto.AskStoreObject)(nil).MsgCode()
			codePong := (*proto.Pong)(nil).MsgCode()
			big := packetArgs(t, &proto.AskStoreObject{Data: make([]byte, 3<<10)})
			small := packetArgs(t, &proto.Pong{})
			bigCharge := newRxBuf(&proto.Packet{Code: codeStore, Args: big}).charge
			smallCharge := newRxBuf(&proto.Packet{Code: codePong, Args: small}).charge
			const nHog, nOther = 16, 15
			// The second small packet crosses the bound, the first does not.
			bound := bigCharge*(nHog+nOther) + smallCharge + smallCharge/2
			cfg := DefaultConfig()
			cfg.ConnRecvBuffer, cfg.LinkRecvBuffer = bound, bound
			l, p := rawPair(t, transports[1], proto.EncodingN, Dialer, cfg)
			c, err := l.NewConn()
			if err != nil {
				t.Fatal(err)
			}
			// The peer opens two Conns (ids 2 and 4); we accept both and
			// never read them.
			p.write(proto.AppendPacketArgs(nil, proto.EncodingN, 2, codeStore, big))
			p.write(proto.AppendPacketArgs(nil, proto.EncodingN, 4, codeStore, big))
			hog, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			other, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			if hog.ID() != 2 || other.ID() != 4 {
				t.Fatalf("accepted %d, %d", hog.ID(), other.ID())
			}
			go l.Accept() // a server's accept loop, which also reads for the link
			got := make(chan error, 2)
			recv2 := func() {
				for range 2 {
					m, err := c.Recv()
					if err == nil && proto.Name(m) != "Pong" {
						err = errors.New("got " + proto.Name(m))
					}
					got <- err
				}
			}
			if receiving {
				// Once the acceptor or the link's own reader holds the
				// baton, the receiver parks in Recv, and its packets are
				// queued (charged) rather than handed over directly.
				time.Sleep(5 * time.Millisecond)
				go recv2()
				time.Sleep(10 * time.Millisecond)
			}
			var buf []byte
			for range nHog - 1 {
				buf = proto.AppendPacketArgs(buf, proto.EncodingN, 2, codeStore, big)
			}
			for range nOther - 1 {
				buf = proto.AppendPacketArgs(buf, proto.EncodingN, 4, codeStore, big)
			}
			buf = proto.AppendPacketArgs(buf, proto.EncodingN, c.ID(), codePong, small)
			buf = proto.AppendPacketArgs(buf, proto.EncodingN, c.ID(), codePong, small)
			p.write(buf)
			waitFor(t, 5*time.Second, "every packet", func() bool { return l.Stats().PacketsIn == nHog+nOther+2 })
			if !receiving {
				go recv2()
			}
			for range 2 {
				if err := wait(t, got); err != nil {
					t.Fatalf("the active Conn: %v (stats %+v)", err, l.Stats())
				}
			}
			s := l.Stats()
			t.Logf("overflows: %d", s.Overflows)
			// With a receiver in Recv, its packets may be handed over
			// directly, uncharged, and then nothing needs aborting.
			if !receiving && s.Overflows != 1 {
				t.Fatalf("overflows = %d, want 1", s.Overflows)
			}
			if s.Overflows > 1 {
				t.Fatalf("overflows = %d: more than the hog was aborted", s.Overflows)
			}
			if s.Overflows == 1 {
				_, err := hog.Recv()
				wantIs(t, err, ErrConnOverflow)
			}
			for i := range nOther {
				if _, err := other.Recv(); err != nil {
					t.Fatalf("the smaller unread Conn, packet %d: %v", i, err)
				}
			}
		})
	}
}

// acceptOne has the raw peer open Conn 1 with an AskObject, and returns
// the Conn our listener link accepted for it, its request read.
func acceptOne(t *testing.T, l *NodeLink, p *rawPeer) *Conn {
	t.Helper()
	p.send(1, &proto.AskObject{OID: 1})
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recv(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Shutdown does not lose the tail: with a late packet from the peer left
// unread, the peer still receives every byte of our answer and then a clean
// EOF (not a reset), and Shutdown returns nil.
func TestShutdownKeepsTail(t *testing.T) {
	leakCheck(t)
	l, p := rawPair(t, transports[1], proto.EncodingN, Listener, nil)
	c := acceptOne(t, l, p)
	const size = 8 << 20
	go func() {
		c.Send(&proto.AnswerObject{OID: 1, Data: make([]byte, size)})
		c.Close()
	}()
	p.send(3, &proto.Ping{}) // late: nobody will take it
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		shut <- l.Shutdown(ctx)
	}()
	// The peer reads only once our side has closed accepting and is
	// draining, so that the tail is still in flight then.
	time.Sleep(200 * time.Millisecond)
	answered := false
	for {
		p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		pkt, err := p.rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("peer read: %v, want a clean EOF (answer received: %v)", err, answered)
			}
			break
		}
		m, err := proto.Decode(pkt.Code, pkt.Args)
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *proto.AnswerObject:
			if pkt.ID != 1 || len(m.Data) != size {
				t.Fatalf("answer on id %d with %d bytes", pkt.ID, len(m.Data))
			}
			answered = true
		case *proto.Error:
			if pkt.ID != 3 || m.Message != "connection refused" {
				t.Fatalf("Error %q on id %d", m.Message, pkt.ID)
			}
		default:
			t.Fatalf("unexpected %s on id %d", proto.Name(m), pkt.ID)
		}
	}
	if !answered {
		t.Fatal("EOF before the answer")
	}
	p.nc.Close()
	if err := wait(t, shut); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wantIs(t, l.Err(), ErrLinkClosed)
}

// When the final flush fails (the peer resets the connection), Shutdown
// says so, and Err keeps reporting the failure rather than ErrLinkClosed.
func TestShutdownReportsFailedFlush(t *testing.T) {
	leakCheck(t)
	l, p := rawPair(t, transports[1], proto.EncodingN, Listener, nil)
	c := acceptOne(t, l, p)
	go func() {
		c.Send(&proto.AnswerObject{OID: 1, Data: make([]byte, 32<<20)})
		c.Close()
	}()
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		shut <- l.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	p.nc.(*net.TCPConn).SetLinger(0)
	p.nc.Close()
	err := wait(t, shut)
	if err == nil {
		t.Fatal("Shutdown returned nil although the answer was lost")
	}
	wantIs(t, err, ErrLinkDown)
	err = l.Err()
	wantIs(t, err, ErrLinkDown)
	if errors.Is(err, ErrLinkClosed) {
		t.Fatalf("Err() = %v hides the failure", err)
	}
}

// Keepalive sees a dead peer while our send buffer is full: the raw peer
// never reads, and the senders keep the buffer full.
func TestKeepAliveSendBufferFull(t *testing.T) {
	leakCheck(t)
	for _, tr := range transports[:2] {
		for _, senders := range []int{1, 4} {
			t.Run(tr.name+"/"+string(rune('0'+senders))+"-senders", func(t *testing.T) {
				cfg := DefaultConfig()
				cfg.KeepAlive, cfg.KeepAliveTimeout = 50*time.Millisecond, 200*time.Millisecond
				cfg.SendBuffer = 64 << 10
				l, _ := rawPair(t, tr, proto.EncodingN, Dialer, cfg)
				size := 32 << 20
				if senders > 1 {
					size = 256 << 10
				}
				msg := &proto.AskStoreObject{Data: make([]byte, size)}
				var wg sync.WaitGroup
				for range senders {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c, err := l.NewConn()
						if err != nil {
							return
						}
						for c.Send(msg) == nil {
						}
					}()
				}
				start := time.Now()
				d := waitDone(t, l, start, 3*time.Second)
				t.Logf("down %v after the start: %v", d.Round(time.Millisecond), l.Err())
				err := l.Err()
				wantIs(t, err, ErrLinkDown)
				// The keepalive, or the TCP_USER_TIMEOUT it sets.
				var le *LinkError
				if !(errors.As(err, &le) && le.Op == "keepalive") && !errors.Is(err, syscall.ETIMEDOUT) {
					t.Fatalf("err = %v, want the keepalive's", err)
				}
				l.Close()
				wg.Wait()
			})
		}
	}
}

// throttle forwards TCP connections to target, passing the client's bytes
// at rate bytes per second and the server's at full speed: a slow uplink.
func throttle(t *testing.T, target string, rate float64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer s.Close()
				buf := make([]byte, 16<<10)
				start, total := time.Now(), 0
				for {
					n, err := c.Read(buf)
					if n > 0 {
						total += n
						time.Sleep(time.Until(start.Add(time.Duration(float64(total) / rate * float64(time.Second)))))
						if _, err := s.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, s)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Keepalive does not kill a healthy link whose upload crawls through a slow
// path: its Ping is stuck behind our own data in the kernel's buffers, but
// the peer keeps acknowledging that data.
func TestKeepAliveSlowUpload(t *testing.T) {
	leakCheck(t)
	scfg := DefaultConfig()
	scfg.AnswerPing = true
	ll, err := ListenLink("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ll.Close() })
	const size = 8 << 20
	received := make(chan error, 1)
	finished := make(chan struct{})
	t.Cleanup(func() { close(finished) })
	go func() {
		sl, err := ll.Accept()
		if err != nil {
			received <- err
			return
		}
		defer sl.Close()
		defer func() { <-finished }() // the client checks its link is up
		c, err := sl.Accept()
		if err != nil {
			received <- err
			return
		}
		var m proto.AskStoreObject
		if _, err := c.Expect(&m); err != nil {
			received <- err
			return
		}
		if len(m.Data) != size {
			received <- errors.New("upload truncated")
			return
		}
		received <- nil
	}()
	addr := throttle(t, ll.Addr().String(), 4e6)
	ccfg := DefaultConfig()
	ccfg.KeepAlive, ccfg.KeepAliveTimeout = 100*time.Millisecond, 500*time.Millisecond
	cl, err := DialLink(ctxTimeout(t), "tcp", addr, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	c, err := cl.NewConn()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Send(&proto.AskStoreObject{Data: make([]byte, size)}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-received:
		if err != nil {
			t.Fatalf("server: %v", err)
		}
		t.Logf("%d MiB uploaded in %v", size>>20, time.Since(start).Round(time.Millisecond))
		if err := cl.Err(); err != nil {
			t.Fatalf("link down after the upload: %v", err)
		}
	case <-cl.Done():
		t.Fatalf("keepalive took a live link down %v into the upload: %v",
			time.Since(start).Round(time.Millisecond), cl.Err())
	case <-time.After(8 * time.Second):
		t.Fatal("upload did not complete in 8 s")
	}
}

// A callback may close the link, whichever goroutine read the Error: the
// background reader, a Conn's receiver, or with the keepalive running; and
// a later Close returns too.
func TestCloseFromCallback(t *testing.T) {
	leakCheck(t)
	for _, mode := range []string{"background", "receiver", "keepalive"} {
		t.Run(mode, func(t *testing.T) {
			cfg := DefaultConfig()
			if mode == "keepalive" {
				cfg.KeepAlive, cfg.KeepAliveTimeout = 20*time.Millisecond, 5*time.Second
			}
			closed := make(chan error, 1)
			var once sync.Once
			cfg.OnUnsolicitedError = func(l *NodeLink, id uint32, e *proto.Error) {
				once.Do(func() { closed <- l.Close() })
			}
			l, p := rawPair(t, transports[1], proto.EncodingN, Dialer, cfg)
			var recv chan error
			switch mode {
			case "receiver":
				c, err := l.NewConn()
				if err != nil {
					t.Fatal(err)
				}
				recv = blocked(t, func() error { _, err := c.Recv(); return err })
			case "keepalive":
				if _, m := p.recv(); proto.Name(m) != "Ping" {
					t.Fatalf("got %s, want the keepalive Ping", proto.Name(m))
				}
			}
			p.send(99, proto.ProtocolError("bye")) // an id of ours that matches nothing
			if err := wait(t, closed); err != nil {
				t.Fatalf("Close from the callback: %v", err)
			}
			later := make(chan error, 1)
			go func() { later <- l.Close() }()
			wait(t, later)
			wantIs(t, l.Err(), ErrLinkClosed)
			if recv != nil {
				wantIs(t, wait(t, recv), ErrLinkClosed)
			}
		})
	}
}

// A Send waiting for buffer space returns ErrClosedConn when its Conn is
// closed; a Send blocked when the link is closed, and every later one,
// returns an error matching ErrLinkClosed, not a raw network error.
func TestSendReleasedByClose(t *testing.T) {
	leakCheck(t)
	t.Run("tcp", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.SendBuffer = 64 << 10
		l, _ := rawPair(t, transports[1], proto.EncodingN, Dialer, cfg) // the peer never reads
		c, _ := l.NewConn()
		// A large message is written from the sender's memory, so its Send
		// waits for the write, which the peer never lets finish.
		c0, _ := l.NewConn()
		first := blocked(t, func() error { return c0.Send(&proto.AskStoreObject{Data: make([]byte, 32<<20)}) })
		waitQueued(t, l, cfg.SendBuffer)
		msg := &proto.AskStoreObject{Data: make([]byte, 32<<10)}
		s1 := blocked(t, func() error { return c.Send(msg) })
		c.Close()
		wantIs(t, wait(t, s1), ErrClosedConn)

		c2, _ := l.NewConn()
		c3, _ := l.NewConn()
		s2 := blocked(t, func() error { return c2.Send(msg) })
		l.Close()
		wantIs(t, wait(t, s2), ErrLinkClosed)
		wantIs(t, wait(t, first), ErrLinkClosed)
		wantIs(t, c3.Send(msg), ErrLinkClosed)
	})
	t.Run("pipe", func(t *testing.T) {
		// On net.Pipe the Send that writes blocks in Write until the peer
		// reads; a second Send waits for buffer space behind it.
		cfg := DefaultConfig()
		cfg.SendBuffer = 64 << 10
		l, _ := rawPair(t, transports[0], proto.EncodingN, Dialer, cfg)
		c1, _ := l.NewConn()
		c2, _ := l.NewConn()
		msg := &proto.AskStoreObject{Data: make([]byte, 1<<20)}
		s1 := blocked(t, func() error { return c1.Send(msg) })
		s2 := blocked(t, func() error { return c2.Send(msg) })
		c2.Close()
		wantIs(t, wait(t, s2), ErrClosedConn)
		l.Close()
		err := wait(t, s1)
		if !errors.Is(err, ErrLinkClosed) {
			t.Fatalf("Send blocked in Write when the link was closed: %v, want ErrLinkClosed", err)
		}
		wantIs(t, c1.Send(msg), ErrLinkClosed)
	})
}

// An AskContext that ends early never lets its late answer be taken as the
// answer to the next Ask on the Conn: receiving on the Conn is closed, as
// documented, and a new Conn works.
func TestAskContextNoDesync(t *testing.T) {
	leakCheck(t)
	for _, enc := range encodings {
		t.Run(enc.String(), func(t *testing.T) {
			a, b := linkPair(t, transports[1], enc, nil)
			go func() {
				for {
					c, err := b.Accept()
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
							oid := m.(*proto.AskObject).OID
							if oid == 1 {
								time.Sleep(200 * time.Millisecond) // slower than the caller's patience
							}
							if c.Send(&proto.AnswerObject{OID: oid}) != nil {
								return
							}
						}
					}()
				}
			}()
			c, _ := a.NewConn()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			var r proto.AnswerObject
			err := c.AskContext(ctx, &proto.AskObject{OID: 1}, &r)
			cancel()
			wantIs(t, err, context.DeadlineExceeded)
			time.Sleep(300 * time.Millisecond) // the late answer has come
			var r2 proto.AnswerObject
			err = c.Ask(&proto.AskObject{OID: 2}, &r2)
			if err == nil {
				t.Fatalf("the next Ask returned answer OID %d with no error", r2.OID)
			}
			wantIs(t, err, ErrClosedConn)
			c2, _ := a.NewConn()
			var r3 proto.AnswerObject
			if err := c2.Ask(&proto.AskObject{OID: 3}, &r3); err != nil || r3.OID != 3 {
				t.Fatalf("a new Conn: %v, OID %d", err, r3.OID)
			}
		})
	}
}

// Under answer-bit routing the link sends no Error of its own on an id it
// allocated (NEO/py would take it for the answer to its own request with
// that id): not for an overflow abort, not for unread answers on Close. It
// counts them. A refused request from the peer still gets its Error.
func TestAnswerBitNoErrorOnOwnID(t *testing.T) {
	leakCheck(t)
	ans := &proto.AnswerObject{OID: 1, Data: make([]byte, 300)}
	// Room for one answer, not two.
	bound := 2*newRxBuf(&proto.Packet{Code: codeAnswerObject, Args: packetArgs(t, ans)}).charge - 1
	cfg := DefaultConfig()
	cfg.ConnRecvBuffer, cfg.LinkRecvBuffer = bound, bound
	l, p := rawPair(t, transports[1], proto.EncodingM, Dialer, cfg)
	if l.Routing() != RouteAnswerBit {
		t.Fatalf("routing %v", l.Routing())
	}
	go l.Accept() // a server's accept loop, which also reads for the link

	// Overflow of a Conn we opened.
	c1, _ := l.NewConn()
	if err := c1.Send(&proto.AskObject{OID: 1}); err != nil {
		t.Fatal(err)
	}
	if id, _ := p.recv(); id != c1.ID() {
		t.Fatalf("request on id %d", id)
	}
	for range 20 { // well over 4 KiB, whatever the per-packet overhead
		p.send(c1.ID(), ans)
	}
	waitFor(t, 5*time.Second, "the overflow", func() bool { return l.Stats().Overflows == 1 })
	_, err := c1.Recv()
	wantIs(t, err, ErrConnOverflow)

	// Unread answers on a Conn we opened and close.
	c2, _ := l.NewConn()
	if err := c2.Send(&proto.AskObject{OID: 2}); err != nil {
		t.Fatal(err)
	}
	if id, m := p.recv(); id != c2.ID() {
		t.Fatalf("after the overflow the peer got %s on id %d, want the request on id %d", proto.Name(m), id, c2.ID())
	}
	p.send(c2.ID(), ans)
	waitFor(t, 5*time.Second, "the answer", func() bool { return l.Stats().PacketsIn == 21 })
	c2.Close()
	p.send(c2.ID(), ans) // late: dropped, not answered

	// A request from the peer that we refuse: its Error must be the first
	// thing the peer receives, so nothing was sent on our ids before.
	l.CloseAccept()
	p.send(c2.ID()+1, &proto.AskObject{OID: 9})
	p.expectError(c2.ID()+1, "connection refused")
	p.expectSilence(30 * time.Millisecond)
	if s := l.Stats(); s.SuppressedErrors != 2 {
		t.Fatalf("SuppressedErrors = %d, want 2 (stats %+v)", s.SuppressedErrors, s)
	}
}

// Request.Reply after Request.Close fails with ErrClosedConn and sends
// nothing, also once the Conn behind the Request serves another request;
// Replies racing with Close and recycling answer on their own id or not at
// all.
func TestReplyAfterCloseRecycled(t *testing.T) {
	leakCheck(t)
	t.Run("sequential", func(t *testing.T) {
		l, p := rawPair(t, transports[1], proto.EncodingN, Listener, nil)
		p.send(1, &proto.AskObject{OID: 1})
		r1, err := l.Recv1()
		if err != nil {
			t.Fatal(err)
		}
		r1.Close()
		p.send(3, &proto.AskObject{OID: 3})
		r2, err := l.Recv1()
		if err != nil {
			t.Fatal(err)
		}
		wantIs(t, r1.Reply(&proto.AnswerObject{OID: 1}), ErrClosedConn)
		if err := r2.Reply(&proto.AnswerObject{OID: 3}); err != nil {
			t.Fatal(err)
		}
		if id, m := p.recv(); id != 3 || m.(*proto.AnswerObject).OID != 3 {
			t.Fatalf("first packet: %s %+v on id %d", proto.Name(m), m, id)
		}
		r2.Close()
		p.expectSilence(30 * time.Millisecond)
	})
	t.Run("racing", func(t *testing.T) {
		l, p := rawPair(t, transports[1], proto.EncodingN, Listener, nil)
		const n = 300
		var buf []byte
		for i := range n {
			id := uint32(2*i + 1)
			buf, _ = proto.AppendPacket(buf, proto.EncodingN, id, &proto.AskObject{OID: proto.Oid(id)}, 0)
		}
		p.write(buf)
		var wg sync.WaitGroup
		var mu sync.Mutex
		replied := 0
		for i := range n {
			req, err := l.Recv1()
			if err != nil {
				t.Fatal(err)
			}
			id := req.ID()
			replying := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				close(replying)
				for range i % 3 { // vary which of Reply and Close goes first
					runtime.Gosched()
				}
				err := req.Reply(&proto.AnswerObject{OID: proto.Oid(id)})
				switch {
				case err == nil:
					mu.Lock()
					replied++
					mu.Unlock()
				case !errors.Is(err, ErrClosedConn):
					t.Errorf("Reply: %v", err)
				}
			}()
			<-replying
			req.Close() // races with Reply; the next Recv1 recycles the Conn
		}
		wg.Wait()
		for range replied {
			id, m := p.recv()
			if a, ok := m.(*proto.AnswerObject); !ok || uint32(a.OID) != id {
				t.Fatalf("%s %+v on id %d: an answer on another request's id", proto.Name(m), m, id)
			}
		}
		p.expectSilence(30 * time.Millisecond)
		t.Logf("%d of %d Replies raced ahead of Close", replied, n)
	})
}

// The accept queue's fifo compacts: a backlog that never empties does not
// grow its array without bound, and keeps its order.
func TestFifoCompacts(t *testing.T) {
	var q fifo[int]
	const depth = 8
	for i := range depth {
		q.push(i)
	}
	for i := range 100_000 {
		q.push(depth + i)
		v, ok := q.pop()
		if !ok || v != i {
			t.Fatalf("pop %d: %v %v", i, v, ok)
		}
	}
	if q.len() != depth {
		t.Fatalf("len %d, want %d", q.len(), depth)
	}
	if c := cap(q.items); c > 8*depth {
		t.Fatalf("a backlog of %d holds an array of %d", depth, c)
	}
}

// noReadDeadline is a net.Conn whose read deadlines cannot be set.
type noReadDeadline struct{ net.Conn }

func (noReadDeadline) SetReadDeadline(time.Time) error {
	return errors.New("read deadlines not supported")
}

// A net.Conn without read deadlines is refused: the link could not
// interrupt its reader (for Close, CloseRecv or a context).
func TestNewLinkNeedsReadDeadline(t *testing.T) {
	leakCheck(t)
	a, b := net.Pipe()
	defer b.Close()
	peer := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := handshake.Accept(ctx, b, 0)
		peer <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	l, err := NewLink(ctx, noReadDeadline{a}, Dialer, nil)
	if err == nil {
		l.Close()
		t.Fatal("NewLink accepted a net.Conn without read deadlines")
	}
	if !strings.HasPrefix(err.Error(), "neonet: ") || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("unclear error: %v", err)
	}
	if wait(t, peer) == nil {
		t.Fatal("the peer completed a handshake over a refused conn")
	}
}

// SendContext gives up with ctx's error when the send buffer stays full,
// and Conn.Close wakes a sender waiting for space.
func TestSendContextBufferFull(t *testing.T) {
	leakCheck(t)
	cfg := DefaultConfig()
	cfg.SendBuffer = 64 << 10
	l, _ := rawPair(t, transports[1], proto.EncodingN, Dialer, cfg) // the peer never reads
	c, _ := l.NewConn()
	// A large Send waits for its write, which the peer never lets finish.
	big := blocked(t, func() error { return c.Send(&proto.AskStoreObject{Data: make([]byte, 32<<20)}) })
	waitQueued(t, l, cfg.SendBuffer)
	msg := &proto.AskStoreObject{Data: make([]byte, 32<<10)}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	start := time.Now()
	err := c.SendContext(ctx, msg)
	cancel()
	wantIs(t, err, context.DeadlineExceeded)
	t.Logf("SendContext returned %v after %v", err, time.Since(start).Round(time.Millisecond))

	s := blocked(t, func() error { return c.SendContext(context.Background(), msg) })
	c.Close()
	wantIs(t, wait(t, s), ErrClosedConn)
	// The large packet's write had begun: only the link's end releases it.
	l.Close()
	wantIs(t, wait(t, big), ErrLinkClosed)
}

// waitQueued waits until more than n bytes are queued for sending on l.
func waitQueued(t *testing.T, l *NodeLink, n int) {
	t.Helper()
	waitFor(t, 5*time.Second, "the send queue to fill", func() bool {
		l.tx.mu.Lock()
		defer l.tx.mu.Unlock()
		return l.tx.pendingLocked() > n
	})
}

// With the peer never reading, what the link holds queued for sending stays
// within SendBuffer plus one packet, however many senders push.
func TestSendBufferBound(t *testing.T) {
	leakCheck(t)
	cfg := DefaultConfig()
	cfg.SendBuffer = 64 << 10
	l, _ := rawPair(t, transports[1], proto.EncodingN, Dialer, cfg)
	msg := &proto.AskStoreObject{Data: make([]byte, 48<<10)}
	pkt, _ := proto.AppendPacket(nil, proto.EncodingN, 1, msg, 0)
	limit := cfg.SendBuffer + len(pkt)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := l.NewConn()
			if err != nil {
				return
			}
			for c.Send(msg) == nil {
			}
		}()
	}
	most := 0
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		l.tx.mu.Lock()
		pending := l.tx.pendingLocked()
		l.tx.mu.Unlock()
		most = max(most, pending)
		if pending > limit {
			t.Errorf("%d bytes queued for sending, over SendBuffer + one packet = %d", pending, limit)
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Logf("at most %d bytes queued (limit %d)", most, limit)
	l.Close()
	wg.Wait()
}

// WriteTimeout takes a link whose peer never reads down with
// ErrWriteTimeout.
func TestWriteTimeout(t *testing.T) {
	leakCheck(t)
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.WriteTimeout = 200 * time.Millisecond
			l, _ := rawPair(t, tr, proto.EncodingN, Dialer, cfg)
			c, _ := l.NewConn()
			go c.Send(&proto.AskStoreObject{Data: make([]byte, 32<<20)})
			start := time.Now()
			d := waitDone(t, l, start, 5*time.Second)
			t.Logf("down after %v: %v", d.Round(time.Millisecond), l.Err())
			wantIs(t, l.Err(), ErrWriteTimeout)
			wantIs(t, l.Err(), ErrLinkDown)
		})
	}
}
