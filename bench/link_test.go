//go:build !nolinkbench

package bench

// NodeLink variants. Everything that touches the neonet/proto API is in this
// file, so API drift is fixed here alone; build with -tags nolinkbench to run
// the other variants while neonet does not compile.
//
// Messages are real proto messages. A round trip is
// AskObject{OID: i+1} → AnswerObject{OID: i+1, Serial: i+1, Data: 32 bytes
// stamped i+1 then pattern}; the client checks OID, Serial, Data length and
// content. Throughput: the client Sends the notification AddObject{OID: i+1,
// Data: 1 MiB stamped i+1 at both ends} n times on one Conn; the server Recvs
// and checks each, and the timing ends with an Ask(AskObject{OID: n}) that the
// server answers once it has checked all n. (AddObject, not AnswerObject: an
// unsolicited answer is misrouted on M links, whose routing follows NEO/py's
// answer bit; a notification is the message NEO sends one way.)

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

func init() {
	rttVariants["link-N-ask"] = func(e *env) rttFunc { return linkAskRTT(e, proto.EncodingN, false) }
	rttVariants["link-M-ask"] = func(e *env) rttFunc { return linkAskRTT(e, proto.EncodingM, false) }
	rttVariants["link-N-pipe-ask"] = func(e *env) rttFunc { return linkAskRTT(e, proto.EncodingN, true) }
	rttVariants["link-N-ask1"] = func(e *env) rttFunc { return linkAsk1RTT(e, proto.EncodingN) }
	rttVariants["link-M-ask1"] = func(e *env) rttFunc { return linkAsk1RTT(e, proto.EncodingM) }

	throughputVariants["link-N"] = func(e *env, n int) (func(int) error, func() error) {
		return linkThroughput(e, proto.EncodingN, n)
	}
	throughputVariants["link-M"] = func(e *env, n int) (func(int) error, func() error) {
		return linkThroughput(e, proto.EncodingM, n)
	}

	parallelVariants["link-N"] = func(e *env, workers int) []rttFunc { return linkParallel(e, proto.EncodingN, workers) }
	parallelVariants["link-M"] = func(e *env, workers int) []rttFunc { return linkParallel(e, proto.EncodingM, workers) }
}

// linkConfig is the default configuration with encoding enc.
func linkConfig(enc proto.Encoding) *neonet.Config {
	cfg := neonet.DefaultConfig()
	cfg.Encoding = enc
	return cfg
}

// linkPair returns the dialer and listener ends of a handshaken NodeLink
// with encoding enc, over loopback TCP or (pipe) net.Pipe. Both are closed at
// teardown.
func linkPair(e *env, enc proto.Encoding, pipe bool) (cli, srv *neonet.NodeLink) {
	cli, srv, closeAll := openLinkPair(e, enc, pipe)
	e.cleanup(closeAll)
	return cli, srv
}

// openLinkPair is linkPair for a caller that closes the pair itself, with
// closeAll (idempotent). On failure it closes what it opened and fails the run.
func openLinkPair(e *env, enc proto.Encoding, pipe bool) (cli, srv *neonet.NodeLink, closeAll func()) {
	ctx, cancel := context.WithTimeout(context.Background(), setupLimit)
	defer cancel()
	type result struct {
		link *neonet.NodeLink
		err  error
	}
	accepted := make(chan result, 1)
	pending := false // the accepting goroutine's result is still to be collected
	var closers []func()
	closeAll = sync.OnceFunc(func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		if pending { // its connection is closed now: it returns
			if r := <-accepted; r.link != nil {
				r.link.Close()
			}
		}
	})
	fail := func(format string, args ...any) {
		closeAll()
		e.fatalf(format, args...)
	}

	var err error
	if pipe {
		c, s := net.Pipe()
		closers = append(closers, func() { c.Close() }, func() { s.Close() })
		pending = true
		go func() {
			l, err := neonet.NewLink(ctx, s, neonet.Listener, linkConfig(enc))
			accepted <- result{l, err}
		}()
		cli, err = neonet.NewLink(ctx, c, neonet.Dialer, linkConfig(enc))
	} else {
		l, lerr := neonet.ListenLink("tcp", "127.0.0.1:0", linkConfig(enc))
		if lerr != nil {
			fail("listen: %v", lerr)
		}
		closers = append(closers, func() { l.Close() })
		pending = true
		go func() {
			sl, err := l.Accept()
			accepted <- result{sl, err}
		}()
		cli, err = neonet.DialLink(ctx, "tcp", l.Addr().String(), linkConfig(enc))
	}
	if err != nil {
		fail("dial link: %v", err)
	}
	closers = append(closers, func() { cli.Close() })
	select {
	case r := <-accepted:
		pending = false
		if r.err != nil {
			fail("accept link: %v", r.err)
		}
		srv = r.link
		closers = append(closers, func() { srv.Close() })
	case <-ctx.Done():
		fail("accept link: %v", ctx.Err())
	}
	return cli, srv, closeAll
}

// newAnswer returns an answer with a 32-byte Data buffer to fill.
func newAnswer() *proto.AnswerObject {
	ans := &proto.AnswerObject{Data: make([]byte, payloadSize)}
	copy(ans.Data, pattern)
	return ans
}

// answer fills ans as the reply to msg, which must be an AskObject.
func answer(ans *proto.AnswerObject, msg proto.Msg) error {
	req, ok := msg.(*proto.AskObject)
	if !ok {
		return fmt.Errorf("server received %T, want *proto.AskObject", msg)
	}
	ans.OID = req.OID
	ans.Serial = proto.Tid(req.OID)
	stamp(ans.Data, uint64(req.OID))
	return nil
}

// checkAnswer checks the reply to AskObject{OID: oid}.
func checkAnswer(ans *proto.AnswerObject, oid proto.Oid) error {
	if ans.OID != oid || ans.Serial != proto.Tid(oid) {
		return fmt.Errorf("answer for oid %d serial %d, want oid and serial %d", ans.OID, ans.Serial, oid)
	}
	return checkPayload(ans.Data, payloadSize, uint64(oid))
}

// serveAsk answers every AskObject received on conn, until conn fails.
func serveAsk(conn *neonet.Conn) error {
	ans := newAnswer()
	for {
		msg, err := conn.Recv()
		if err != nil {
			return err
		}
		if err := answer(ans, msg); err != nil {
			return err
		}
		if err := conn.Send(ans); err != nil {
			return err
		}
	}
}

// askRTT returns a round trip of Conn.Ask on conn.
func askRTT(conn *neonet.Conn) rttFunc {
	req := &proto.AskObject{}
	resp := &proto.AnswerObject{}
	return func(i int) error {
		req.OID = proto.Oid(i + 1)
		if err := conn.Ask(req, resp); err != nil {
			return err
		}
		return checkAnswer(resp, req.OID)
	}
}

// linkAskRTT: Conn.Ask on one open Conn; the server serves that Conn in one
// goroutine.
func linkAskRTT(e *env, enc proto.Encoding, pipe bool) rttFunc {
	cli, srv := linkPair(e, enc, pipe)
	conn, err := cli.NewConn()
	if err != nil {
		e.fatalf("new conn: %v", err)
	}
	e.serve("link server", func() error {
		sc, err := srv.Accept()
		if err != nil {
			return err
		}
		return serveAsk(sc)
	})
	return askRTT(conn)
}

// linkAsk1RTT: lightweight mode, Ask1 ↔ Recv1 + Reply + Close, the server
// handling each request inline in its Recv1 loop.
func linkAsk1RTT(e *env, enc proto.Encoding) rttFunc {
	cli, srv := linkPair(e, enc, false)
	e.serve("link Recv1 server", func() error {
		ans := newAnswer()
		for {
			req, err := srv.Recv1()
			if err != nil {
				return err
			}
			err = answer(ans, req.Msg)
			if err == nil {
				err = req.Reply(ans)
			}
			req.Close()
			if err != nil {
				return err
			}
		}
	})
	req := &proto.AskObject{}
	resp := &proto.AnswerObject{}
	return func(i int) error {
		req.OID = proto.Oid(i + 1)
		if err := cli.Ask1(req, resp); err != nil {
			return err
		}
		return checkAnswer(resp, req.OID)
	}
}

// linkThroughput: n AddObject notifications with 1 MiB Data sent on one Conn,
// then an Ask that the server answers once it has received and checked all n.
func linkThroughput(e *env, enc proto.Encoding, n int) (send func(int) error, finish func() error) {
	cli, srv := linkPair(e, enc, false)
	conn, err := cli.NewConn()
	if err != nil {
		e.fatalf("new conn: %v", err)
	}
	e.serve("link sink", func() error {
		sc, err := srv.Accept()
		if err != nil {
			return err
		}
		count := 0
		for {
			msg, err := sc.Recv()
			if err != nil {
				return err
			}
			switch m := msg.(type) {
			case *proto.AddObject:
				count++
				if m.OID != proto.Oid(count) {
					return fmt.Errorf("message %d has oid %d", count, m.OID)
				}
				if err := checkBig(m.Data, uint64(count)); err != nil {
					return err
				}
			case *proto.AskObject:
				if m.OID != proto.Oid(count) {
					return fmt.Errorf("sender says %d messages, received %d", m.OID, count)
				}
				return sc.Send(&proto.AnswerObject{OID: m.OID, Serial: proto.Tid(count)})
			default:
				return fmt.Errorf("server received %T", msg)
			}
		}
	})
	msg := &proto.AddObject{Serial: 1, Data: newBig()}
	send = func(i int) error {
		msg.OID = proto.Oid(i + 1)
		stampBig(msg.Data, uint64(i)+1)
		return conn.Send(msg)
	}
	finish = func() error {
		ack := &proto.AnswerObject{}
		if err := conn.Ask(&proto.AskObject{OID: proto.Oid(n)}, ack); err != nil {
			return err
		}
		if ack.OID != proto.Oid(n) || ack.Serial != proto.Tid(n) {
			return fmt.Errorf("receiver acknowledged oid %d serial %d, want %d", ack.OID, ack.Serial, n)
		}
		return nil
	}
	return send, finish
}

// linkParallel: one link, one Conn per worker; the server runs one goroutine
// per accepted Conn.
func linkParallel(e *env, enc proto.Encoding, workers int) []rttFunc {
	cli, srv := linkPair(e, enc, false)
	e.serve("link accept", func() error {
		for {
			sc, err := srv.Accept()
			if err != nil {
				return err
			}
			e.serve("link server", func() error { return serveAsk(sc) })
		}
	})
	rts := make([]rttFunc, workers)
	for w := range rts {
		conn, err := cli.NewConn()
		if err != nil {
			e.fatalf("new conn: %v", err)
		}
		rts[w] = askRTT(conn)
	}
	return rts
}

// BenchmarkIdleConnMemory opens 10,000 Conns on one link (one op opens all of
// them) and reports the heap they hold, in bytes per Conn (B/conn): live heap
// after a GC with them open, minus live heap after a GC before, over 10,000.
// The Conns are idle (nothing sent), so this is the dialer-side cost of a Conn
// plus anything the listener side keeps for it; both ends are in this process.
// Every op uses a new link, so no Conn is recycled from an earlier op.
func BenchmarkIdleConnMemory(b *testing.B) {
	e := newEnv(b)
	b.ResetTimer()
	perConn := idleConnMemory(e, idleConns, b.N, b.StartTimer, b.StopTimer)
	b.ReportMetric(perConn, "B/conn")
}

// idleConnMemory runs iters rounds of: open a link pair, open n Conns on it,
// measure, close the link. It returns the mean heap bytes per Conn. start and
// stop bracket the opening of the Conns, the timed part.
func idleConnMemory(e *env, n, iters int, start, stop func()) float64 {
	conns := make([]*neonet.Conn, n)
	var current atomic.Pointer[func()] // closes the link pair of the round in progress
	e.cleanup(func() {
		if f := current.Load(); f != nil {
			(*f)()
		}
	})
	var total float64
	var before, after runtime.MemStats
	for range iters {
		stop()
		cli, _, closeLinks := openLinkPair(e, proto.EncodingN, false)
		current.Store(&closeLinks)
		runtime.GC()
		runtime.ReadMemStats(&before)
		start()
		for j := range conns {
			c, err := cli.NewConn()
			if err != nil {
				e.fatalf("conn %d: %v", j, err)
			}
			conns[j] = c
		}
		stop()
		runtime.GC()
		runtime.ReadMemStats(&after)
		total += float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
		clear(conns)
		closeLinks()
		start()
	}
	return total / float64(iters)
}

// TestIdleConnMemory is the smoke test of BenchmarkIdleConnMemory.
func TestIdleConnMemory(t *testing.T) {
	nop := func() {}
	per := idleConnMemory(newEnv(t), 1000, 2, nop, nop)
	t.Logf("%.0f B/conn (1000 Conns)", per)
}
