package neonet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// Tests for a link that reads its socket whether or not anyone waits on it.

// pipelineResult is what a pipelined client saw.
type pipelineResult struct {
	answers int // answers received in order before err
	err     error
}

// pipeline runs the NEO commit pattern on one Conn: the client sends n
// AskStoreObject requests carrying size bytes, then expects n answers; the
// server expects each request and answers it with size bytes. The client
// calls sent, if not nil, between sending and expecting. It returns what the
// client saw, or fails the test if the client makes no progress within
// limit (a deadlock).
func pipeline(t *testing.T, cli, srv *NodeLink, n, size int, limit time.Duration, sent func()) pipelineResult {
	t.Helper()
	data := make([]byte, size)
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var req proto.AskStoreObject
		ans := proto.AnswerObject{Data: data}
		for range n {
			if _, err := c.Expect(&req); err != nil {
				return
			}
			ans.OID = req.OID
			if err := c.Send(&ans); err != nil {
				return
			}
		}
	}()
	res := make(chan pipelineResult, 1)
	go func() {
		c, err := cli.NewConn()
		if err != nil {
			res <- pipelineResult{err: err}
			return
		}
		defer c.Close()
		req := proto.AskStoreObject{Data: data}
		for i := range n {
			req.OID = proto.Oid(i)
			if err := c.Send(&req); err != nil {
				res <- pipelineResult{err: fmt.Errorf("send %d: %w", i, err)}
				return
			}
		}
		if sent != nil {
			sent()
		}
		var ans proto.AnswerObject
		for i := range n {
			if _, err := c.Expect(&ans); err != nil {
				res <- pipelineResult{answers: i, err: err}
				return
			}
			if ans.OID != proto.Oid(i) || len(ans.Data) != size {
				res <- pipelineResult{answers: i, err: fmt.Errorf("answer %d: oid %d, %d bytes", i, ans.OID, len(ans.Data))}
				return
			}
		}
		res <- pipelineResult{answers: n}
	}()
	select {
	case r := <-res:
		return r
	case <-time.After(limit):
		t.Fatalf("no result after %v (deadlock): client %+v, server %+v", limit, cli.Stats(), srv.Stats())
		return pipelineResult{}
	}
}

// pipelineSetups runs f for net.Pipe and TCP, N and M, with the dialer and
// then the listener as the pipelining client. cliCfg and srvCfg configure
// the client's and the server's ends (nil for defaults).
func pipelineSetups(t *testing.T, cliCfg, srvCfg *Config, f func(t *testing.T, cli, srv *NodeLink)) {
	for _, tr := range transports[:2] {
		for _, enc := range encodings {
			for _, dialerIsClient := range []bool{true, false} {
				name := tr.name + "/" + enc.String() + "/dialer-asks"
				if !dialerIsClient {
					name = tr.name + "/" + enc.String() + "/listener-asks"
				}
				t.Run(name, func(t *testing.T) {
					if dialerIsClient {
						d, l := linkPairCfg(t, tr, enc, cliCfg, srvCfg)
						f(t, d, l)
					} else {
						d, l := linkPairCfg(t, tr, enc, srvCfg, cliCfg)
						f(t, l, d)
					}
				})
			}
		}
	}
}

// Pipelined requests and answers larger than every socket buffer complete:
// the client is busy sending while the answers arrive, and nobody receives
// on its link until it has sent everything (issue 10, item 1).
func TestPipelinedNoDeadlock(t *testing.T) {
	leakCheck(t)
	pipelineSetups(t, nil, nil, func(t *testing.T, cli, srv *NodeLink) {
		const n, size = 400, 32 << 10
		start := time.Now()
		r := pipeline(t, cli, srv, n, size, 8*time.Second, nil)
		if r.err != nil || r.answers != n {
			t.Fatalf("after %d answers: %v (client %+v)", r.answers, r.err, cli.Stats())
		}
		t.Logf("%d × %d KiB each way in %v", n, size>>10, time.Since(start).Round(time.Millisecond))
	})
}

// Beyond the receive bounds the pipelining client's Conn is aborted with
// ErrConnOverflow: an error, never a hang. (The server's bounds are large,
// so that it is the client's end that overflows.)
func TestPipelinedOverflow(t *testing.T) {
	leakCheck(t)
	cli := DefaultConfig()
	cli.ConnRecvBuffer, cli.LinkRecvBuffer = 1<<20, 1<<20
	srv := DefaultConfig()
	srv.ConnRecvBuffer, srv.LinkRecvBuffer = 64<<20, 64<<20
	pipelineSetups(t, cli, srv, func(t *testing.T, cli, srv *NodeLink) {
		const n, size = 400, 32 << 10
		// Over TCP the socket buffers may absorb every request before
		// enough answers are back to overflow; a client that reads only
		// once the answers are over its bound makes the outcome certain.
		overflowed := func() {
			deadline := time.Now().Add(5 * time.Second)
			for cli.Stats().Overflows == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		r := pipeline(t, cli, srv, n, size, 8*time.Second, overflowed)
		if !errors.Is(r.err, ErrConnOverflow) {
			t.Fatalf("after %d answers: err = %v, want ErrConnOverflow", r.answers, r.err)
		}
		if r.answers == n {
			t.Fatal("every answer arrived although they exceed ConnRecvBuffer")
		}
		if err := cli.Err(); err != nil {
			t.Fatalf("the link went down: %v", err)
		}
		if s := cli.Stats(); s.Overflows != 1 {
			t.Fatalf("overflows = %d, want 1", s.Overflows)
		}
	})
}

// waitDone waits for l.Done and returns how long it took, failing the test
// after limit.
func waitDone(t *testing.T, l *NodeLink, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	select {
	case <-l.Done():
		return time.Since(start)
	case <-time.After(limit - time.Since(start)):
		t.Fatalf("Done not closed %v after the peer went away (Err = %v)", limit, l.Err())
		return 0
	}
}

// A link notices its peer's FIN or RST with nobody receiving on it and no
// keepalive (issue 10, item 2). The requirement is 100 ms; the assertion is
// looser so that a loaded machine under -race does not make it flaky, and
// the measured delay is logged.
func TestDoneWithoutReceiver(t *testing.T) {
	leakCheck(t)
	cases := []struct {
		name string
		tr   transport
		kill func(nc net.Conn)
	}{
		{"tcp-fin", transports[1], func(nc net.Conn) { nc.Close() }},
		{"tcp-rst", transports[1], func(nc net.Conn) {
			nc.(*net.TCPConn).SetLinger(0)
			nc.Close()
		}},
		{"pipe-close", transports[0], func(nc net.Conn) { nc.Close() }},
	}
	for _, tc := range cases {
		for _, enc := range encodings {
			t.Run(tc.name+"/"+enc.String(), func(t *testing.T) {
				cfg := DefaultConfig()
				if cfg.KeepAlive != 0 {
					t.Fatal("the default config has keepalive on; this test needs it off")
				}
				l, p := rawPair(t, tc.tr, enc, Dialer, cfg)
				c, err := l.NewConn() // an open Conn, but nobody in Recv
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				time.Sleep(10 * time.Millisecond) // the link is idle
				start := time.Now()
				tc.kill(p.nc)
				d := waitDone(t, l, start, 2*time.Second)
				t.Logf("Done %v after the peer went away", d.Round(10*time.Microsecond))
				err = l.Err()
				wantIs(t, err, ErrLinkDown)
				wantCause(t, err)
				_, err = c.Recv()
				wantIs(t, err, ErrLinkDown)
			})
		}
	}
}

// The link-level close of a peer NodeLink is noticed the same way.
func TestDoneWithoutReceiverLinkClose(t *testing.T) {
	leakCheck(t)
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) {
			a, b := linkPair(t, tr, proto.EncodingN, nil)
			start := time.Now()
			b.Close()
			d := waitDone(t, a, start, 2*time.Second)
			t.Logf("Done %v after the peer's Close", d.Round(10*time.Microsecond))
			wantIs(t, a.Err(), ErrLinkDown)
			wantCause(t, a.Err())
		})
	}
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A full accept backlog refuses requests with an Error answer the peer
// sees, and a notification (which cannot be answered) takes the link down
// on both ends with ErrAcceptOverflow rather than being lost (issue 10,
// item 4). Nobody accepts or receives on the overflowing link.
func TestNotificationOverflow(t *testing.T) {
	leakCheck(t)
	inval := &proto.InvalidateObjects{TID: 7, OIDList: []proto.Oid{1, 2}}
	if _, ok := proto.AnswerOf(inval.MsgCode()); ok {
		t.Fatal("InvalidateObjects has an answer; the test needs a notification")
	}
	for _, tr := range transports[:2] {
		for _, enc := range encodings {
			t.Run(tr.name+"/"+enc.String(), func(t *testing.T) {
				cfg := DefaultConfig()
				cfg.AcceptBacklog = 2
				a, b := linkPair(t, tr, enc, cfg)
				for range cfg.AcceptBacklog {
					if err := b.Send1(&proto.Ping{}); err != nil {
						t.Fatal(err)
					}
				}
				waitFor(t, 3*time.Second, "a full backlog", func() bool { return a.Stats().AcceptBacklog == 2 })

				// A request beyond the backlog is refused with an answer.
				c, err := b.NewConn()
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				err = c.AskContext(ctx, &proto.Ping{}, &proto.Pong{})
				cancel()
				var pe *proto.Error
				if !errors.As(err, &pe) || pe.Message != "connection refused" {
					t.Fatalf("request beyond the backlog: %v, want Error \"connection refused\"", err)
				}
				c.Close()
				if err := a.Err(); err != nil {
					t.Fatalf("a refused request took the link down: %v", err)
				}
				if s := a.Stats(); s.RepliedRefused != 1 {
					t.Fatalf("RepliedRefused = %d, want 1", s.RepliedRefused)
				}

				// A notification beyond the backlog takes both ends down.
				if err := b.Send1(inval); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				waitDone(t, a, start, 3*time.Second)
				err = a.Err()
				wantIs(t, err, ErrAcceptOverflow)
				wantIs(t, err, ErrLinkDown)
				waitDone(t, b, start, 3*time.Second)
				wantIs(t, b.Err(), ErrLinkDown)
			})
		}
	}
}

// The fast paths do not allocate in steady state. AllocsPerRun counts the
// allocations of every goroutine, so the peer's side of each exchange is
// written not to allocate either: a zero here covers both ends.
func TestZeroAllocs(t *testing.T) {
	leakCheck(t)
	const warm, runs = 2000, 2000
	data := make([]byte, 32)
	for _, enc := range encodings {
		// echo answers every AskObject on an accepted Conn, without allocating.
		echo := func(b *NodeLink) {
			c, err := b.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			var req proto.AskObject
			ans := proto.AnswerObject{Data: data}
			for {
				if _, err := c.Expect(&req); err != nil {
					return
				}
				ans.OID = req.OID
				if c.Send(&ans) != nil {
					return
				}
			}
		}
		// answer1 answers Recv1 requests, without allocating.
		answer1 := func(b *NodeLink) {
			ans := proto.AnswerObject{Data: data}
			for {
				req, err := b.Recv1()
				if err != nil {
					return
				}
				ans.OID = req.Msg.(*proto.AskObject).OID
				req.Reply(&ans)
				req.Close()
			}
		}
		measure := func(t *testing.T, op func()) {
			for range warm {
				op()
			}
			n := testing.AllocsPerRun(runs, op)
			switch {
			case raceEnabled:
				// The race detector drops sync.Pool items at random and
				// allocates for its own bookkeeping: the paths still run
				// under it, but their counts mean nothing.
				t.Logf("%v allocations per operation under the race detector", n)
			case n != 0:
				t.Fatalf("%v allocations per operation, want 0", n)
			}
		}
		req := proto.AskObject{OID: 1}
		var resp proto.AnswerObject
		t.Run(enc.String()+"/send-recv", func(t *testing.T) {
			a, b := linkPair(t, transports[1], enc, nil)
			go echo(b)
			c, _ := a.NewConn()
			measure(t, func() {
				if err := c.Send(&req); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Recv(); err != nil {
					t.Fatal(err)
				}
			})
		})
		t.Run(enc.String()+"/ask", func(t *testing.T) {
			a, b := linkPair(t, transports[1], enc, nil)
			go echo(b)
			c, _ := a.NewConn()
			measure(t, func() {
				if err := c.Ask(&req, &resp); err != nil {
					t.Fatal(err)
				}
			})
		})
		t.Run(enc.String()+"/ask1", func(t *testing.T) {
			a, b := linkPair(t, transports[1], enc, nil)
			go answer1(b)
			measure(t, func() {
				if err := a.Ask1(&req, &resp); err != nil {
					t.Fatal(err)
				}
			})
		})
		t.Run(enc.String()+"/recv1-reply", func(t *testing.T) {
			a, b := linkPair(t, transports[1], enc, nil)
			stop := make(chan struct{})
			asked := make(chan struct{})
			go func() {
				defer close(asked)
				var resp proto.AnswerObject
				req := proto.AskObject{OID: 2}
				for {
					select {
					case <-stop:
						return
					default:
					}
					if a.Ask1(&req, &resp) != nil {
						return
					}
				}
			}()
			ans := proto.AnswerObject{Data: data}
			measure(t, func() {
				r, err := b.Recv1()
				if err != nil {
					t.Fatal(err)
				}
				ans.OID = r.Msg.(*proto.AskObject).OID
				if err := r.Reply(&ans); err != nil {
					t.Fatal(err)
				}
				r.Close()
			})
			close(stop)
			a.Close()
			<-asked
		})
	}
}
