//go:build !nolinkbench

package bench

// NodeLink variants. Everything that touches the neonet API is in this
// file, so API drift is fixed here alone; build with -tags nolinkbench to run
// the other variants while neonet does not compile. (wire_test.go uses proto,
// not neonet, to size the TCP variants' packets.)
//
// Messages are real proto messages. A round trip is
// AskObject{OID: i+1} → AnswerObject{OID: i+1, Serial: i+1, Data: 32 bytes,
// or 4 KiB in the *-4KiB variants, stamped i+1 then pattern}; the client
// checks OID, Serial, Data length and content. Throughput: the client Sends
// the notification AddObject{OID: i+1, Data: 1 MiB or 64 KiB stamped i+1 at
// both ends} n times on one Conn; the server Recvs and checks each, and the
// timing ends with an Ask(AskObject{OID: n}) that the server answers once it
// has checked all n. (AddObject, not AnswerObject: an unsolicited answer is
// misrouted on M links, whose routing follows NEO/py's answer bit; a
// notification is the message NEO sends one way.)

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
	for _, enc := range []struct {
		name string
		enc  proto.Encoding
	}{{"N", proto.EncodingN}, {"M", proto.EncodingM}} {
		v := "link-" + enc.name
		rttVariants[v+"-ask"] = func(e *env) rttFunc { return linkAskRTT(e, enc.enc, false, small) }
		rttVariants[v+"-ask-4KiB"] = func(e *env) rttFunc { return linkAskRTT(e, enc.enc, false, answers4KiB) }
		rttVariants[v+"-ask1"] = func(e *env) rttFunc { return linkAsk1RTT(e, enc.enc) }
		rttVariants[v+"-ask-acceptloop"] = func(e *env) rttFunc { return linkAcceptLoopRTT(e, enc.enc) }
		rttVariants[v+"-ask1-go"] = func(e *env) rttFunc { return linkAsk1GoRTT(e, enc.enc) }
		rttVariants[v+"-connperreq"] = func(e *env) rttFunc { return linkConnPerReqRTT(e, enc.enc) }
		throughputVariants[v] = func(e *env, size, n int) (func(int) error, func() error) {
			return linkThroughput(e, enc.enc, size, n)
		}
		parallelVariants[v] = func(e *env, workers int, sh shape) []rttFunc {
			return linkParallel(e, enc.enc, workers, sh)
		}
	}
	rttVariants["link-N-pipe-ask"] = func(e *env) rttFunc { return linkAskRTT(e, proto.EncodingN, true, small) }
	idleVariants["link-N"] = linkIdle(proto.EncodingN)
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

// newAnswer returns an answer with a Data buffer of data bytes to fill.
func newAnswer(data int) *proto.AnswerObject {
	return &proto.AnswerObject{Data: newMessage(data)}
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

// checkAnswer checks the reply to AskObject{OID: oid} with data bytes.
func checkAnswer(ans *proto.AnswerObject, oid proto.Oid, data int) error {
	if ans.OID != oid || ans.Serial != proto.Tid(oid) {
		return fmt.Errorf("answer for oid %d serial %d, want oid and serial %d", ans.OID, ans.Serial, oid)
	}
	return checkPayload(ans.Data, data, uint64(oid))
}

// serveAsk answers every AskObject received on conn with data bytes, until
// conn fails.
func serveAsk(conn *neonet.Conn, data int) error {
	ans := newAnswer(data)
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

// askRTT returns a round trip of Conn.Ask on conn, answered with data bytes.
func askRTT(conn *neonet.Conn, data int) rttFunc {
	req := &proto.AskObject{}
	resp := &proto.AnswerObject{}
	return func(i int) error {
		req.OID = proto.Oid(i + 1)
		if err := conn.Ask(req, resp); err != nil {
			return err
		}
		return checkAnswer(resp, req.OID, data)
	}
}

// linkAskRTT: Conn.Ask on one open Conn; the server serves that Conn in one
// goroutine.
func linkAskRTT(e *env, enc proto.Encoding, pipe bool, sh shape) rttFunc {
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
		return serveAsk(sc, sh.data)
	})
	return askRTT(conn, sh.data)
}

// linkAcceptLoopRTT: Conn.Ask on one open Conn; the server runs an Accept
// loop that stays running and serves each accepted Conn in a goroutine of
// its own, as a storage node serves its peers.
func linkAcceptLoopRTT(e *env, enc proto.Encoding) rttFunc {
	cli, srv := linkPair(e, enc, false)
	serveAcceptLoop(e, srv, payloadSize)
	conn, err := cli.NewConn()
	if err != nil {
		e.fatalf("new conn: %v", err)
	}
	return askRTT(conn, payloadSize)
}

// serveAcceptLoop accepts Conns on srv until the link closes and serves
// each in a goroutine of its own with answers of data bytes.
func serveAcceptLoop(e *env, srv *neonet.NodeLink, data int) {
	e.serve("link accept loop", func() error {
		for {
			sc, err := srv.Accept()
			if err != nil {
				return err
			}
			e.serve("link conn server", func() error { return serveAsk(sc, data) })
		}
	})
}

// linkAsk1RTT: lightweight mode, Ask1 ↔ Recv1 + Reply + Close, the server
// handling each request inline in its Recv1 loop.
func linkAsk1RTT(e *env, enc proto.Encoding) rttFunc {
	cli, srv := linkPair(e, enc, false)
	e.serve("link Recv1 server", func() error {
		ans := newAnswer(payloadSize)
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
	return ask1RTT(cli)
}

// ask1RTT returns a round trip of NodeLink.Ask1 on cli.
func ask1RTT(cli *neonet.NodeLink) rttFunc {
	req := &proto.AskObject{}
	resp := &proto.AnswerObject{}
	return func(i int) error {
		req.OID = proto.Oid(i + 1)
		if err := cli.Ask1(req, resp); err != nil {
			return err
		}
		return checkAnswer(resp, req.OID, payloadSize)
	}
}

// linkHandler answers requests in goroutines of their own, each with an
// answer from a pool, as a server that hands requests to handlers does.
type linkHandler struct {
	e       *env
	answers sync.Pool // *proto.AnswerObject with payloadSize bytes of Data
}

func newLinkHandler(e *env) *linkHandler {
	h := &linkHandler{e: e}
	h.answers.New = func() any { return newAnswer(payloadSize) }
	return h
}

// linkAsk1GoRTT: Ask1 ↔ a Recv1 loop that hands each request to a new
// goroutine (`go handle(req)`), which replies and closes it.
func linkAsk1GoRTT(e *env, enc proto.Encoding) rttFunc {
	cli, srv := linkPair(e, enc, false)
	h := newLinkHandler(e)
	e.serve("link Recv1 loop", func() error {
		for {
			req, err := srv.Recv1()
			if err != nil {
				return err
			}
			e.wg.Add(1)
			go h.handle(req)
		}
	})
	return ask1RTT(cli)
}

func (h *linkHandler) handle(req neonet.Request) {
	defer h.e.wg.Done()
	ans := h.answers.Get().(*proto.AnswerObject)
	err := answer(ans, req.Msg)
	if err == nil {
		err = req.Reply(ans)
	}
	req.Close()
	h.answers.Put(ans)
	if err != nil {
		h.e.fail("link request handler", err)
	}
}

// linkConnPerReqRTT: a new Conn per request (NewConn, Ask, Close); the
// server runs an Accept loop and a goroutine per Conn that answers its one
// request and closes it.
func linkConnPerReqRTT(e *env, enc proto.Encoding) rttFunc {
	cli, srv := linkPair(e, enc, false)
	h := newLinkHandler(e)
	e.serve("link accept loop", func() error {
		for {
			sc, err := srv.Accept()
			if err != nil {
				return err
			}
			e.wg.Add(1)
			go h.handleConn(sc)
		}
	})
	req := &proto.AskObject{}
	resp := &proto.AnswerObject{}
	return func(i int) error {
		conn, err := cli.NewConn()
		if err != nil {
			return err
		}
		req.OID = proto.Oid(i + 1)
		err = conn.Ask(req, resp)
		conn.Close()
		if err != nil {
			return err
		}
		return checkAnswer(resp, req.OID, payloadSize)
	}
}

// handleConn answers the one request of sc and closes it.
func (h *linkHandler) handleConn(sc *neonet.Conn) {
	defer h.e.wg.Done()
	defer sc.Close()
	ans := h.answers.Get().(*proto.AnswerObject)
	defer h.answers.Put(ans)
	msg, err := sc.Recv()
	if err == nil {
		err = answer(ans, msg)
	}
	if err == nil {
		err = sc.Send(ans)
	}
	if err != nil {
		h.e.fail("link conn handler", err)
	}
}

// linkThroughput: n AddObject notifications with size bytes of Data sent on
// one Conn, then an Ask that the server answers once it has received and
// checked all n.
func linkThroughput(e *env, enc proto.Encoding, size, n int) (send func(int) error, finish func() error) {
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
				if err := checkMessage(m.Data, size, uint64(count)); err != nil {
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
	msg := &proto.AddObject{Serial: 1, Data: newMessage(size)}
	send = func(i int) error {
		msg.OID = proto.Oid(i + 1)
		stampMessage(msg.Data, uint64(i)+1)
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
func linkParallel(e *env, enc proto.Encoding, workers int, sh shape) []rttFunc {
	cli, srv := linkPair(e, enc, false)
	serveAcceptLoop(e, srv, sh.data)
	rts := make([]rttFunc, workers)
	for w := range rts {
		conn, err := cli.NewConn()
		if err != nil {
			e.fatalf("new conn: %v", err)
		}
		rts[w] = askRTT(conn, sh.data)
	}
	return rts
}

// linkIdle is the NodeLink variant of BenchmarkIdleLinks: links dialed to
// one LinkListener. The round trip on each is a Conn the dialer opens with
// AskObject{OID}, answered with AnswerObject (32 bytes of Data) and then
// closed at both ends.
func linkIdle(enc proto.Encoding) *idleVariant {
	return &idleVariant{
		listen: func(e *env, n int, h *holder) (string, func() error) {
			ll, err := neonet.ListenLink("tcp", "127.0.0.1:0", linkConfig(enc))
			if err != nil {
				e.fatalf("listen: %v", err)
			}
			e.closeOnTeardown(ll)
			return ll.Addr().String(), func() error {
				ans := newAnswer(payloadSize)
				for i := range n {
					l, err := ll.Accept()
					if err != nil {
						return err
					}
					h.add(l)
					if err := answerOneConn(l, ans); err != nil {
						return fmt.Errorf("link %d: %w", i, err)
					}
				}
				return nil
			}
		},
		dial: func(addr string, n int, h *holder) error {
			ctx, cancel := context.WithTimeout(context.Background(), runLimit)
			defer cancel()
			req, got := &proto.AskObject{}, &proto.AnswerObject{}
			for i := range n {
				l, err := neonet.DialLink(ctx, "tcp", addr, linkConfig(enc))
				if err != nil {
					return fmt.Errorf("dial %d: %w", i, err)
				}
				h.add(l)
				c, err := l.NewConn()
				if err != nil {
					return err
				}
				req.OID = proto.Oid(i + 1)
				err = c.Ask(req, got)
				c.Close()
				if err == nil {
					err = checkAnswer(got, req.OID, payloadSize)
				}
				if err != nil {
					return fmt.Errorf("link %d: %w", i, err)
				}
			}
			return nil
		},
	}
}

// answerOneConn accepts one Conn on l, answers its AskObject and closes it.
func answerOneConn(l *neonet.NodeLink, ans *proto.AnswerObject) error {
	c, err := l.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	msg, err := c.Recv()
	if err == nil {
		err = answer(ans, msg)
	}
	if err == nil {
		err = c.Send(ans)
	}
	return err
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
