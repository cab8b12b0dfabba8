package bench

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkIdleLinks: what an idle link costs. One op opens 10,000 link
// pairs over loopback, both ends in this process, makes one round trip on
// each (NodeLink: a Conn, AskObject → AnswerObject with 32 bytes, then both
// ends close the Conn; yamux, smux: a stream, 32 bytes each way, then both
// ends close it; tcp: 32 bytes each way on the bare connection, the floor),
// waits idleSettle, and measures what the pairs hold: live heap after a GC
// and goroutines, each per link end (B/link, goroutines/link: the totals
// over 20,000 ends). The op's time is that of opening the pairs and the round
// trips. 20,000 sockets need RLIMIT_NOFILE above the usual 1024 or 20,000:
// the benchmark raises it, or skips saying why it cannot.
func BenchmarkIdleLinks(b *testing.B) {
	if err := ensureFileLimit(2*idleLinkPairs + fileSlack); err != nil {
		b.Skipf("IdleLinks needs %d open files for %d link pairs: %v", 2*idleLinkPairs+fileSlack, idleLinkPairs, err)
	}
	for _, name := range idleOrder {
		setup := idleVariants[name]
		if setup == nil {
			continue
		}
		b.Run(name, func(b *testing.B) {
			var heap, goroutines float64
			for range b.N {
				h, g := idleRound(b, setup, idleLinkPairs, b.StartTimer, b.StopTimer)
				heap += h
				goroutines += g
			}
			b.ReportMetric(heap/float64(b.N), "B/link")
			b.ReportMetric(goroutines/float64(b.N), "goroutines/link")
		})
	}
}

const (
	// fileSlack is the descriptors beyond the sockets of the link pairs:
	// listener, runtime poller, standard files, test binary.
	fileSlack = 256
	// idleSettle is how long the pairs stay idle before they are measured,
	// so that work a transport defers after traffic (flushing, releasing
	// buffers, parking goroutines) is done.
	idleSettle = 250 * time.Millisecond
)

// idleRound opens n pairs of one IdleLinks variant in a fresh env, measures
// them once idle, and closes them. It returns heap bytes and goroutines per
// link end. start and stop bracket the timed part, opening the pairs.
func idleRound(tb testing.TB, setup idleSetup, n int, start, stop func()) (heapPerLink, goroutinesPerLink float64) {
	tb.Helper()
	stop()
	e := startEnv(tb)
	defer e.teardown()
	open := setup(e, n)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	start()
	err := open()
	stop()
	if err != nil {
		tb.Fatalf("open %d pairs: %v", n, err)
	}
	time.Sleep(idleSettle)
	runtime.GC()
	runtime.ReadMemStats(&after)
	g1 := runtime.NumGoroutine()
	ends := float64(2 * n)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / ends, float64(g1-g0) / ends
}

// holder keeps what an IdleLinks round opens, for teardown. Its capacity is
// allocated up front so that the measurement sees only the transports'
// memory (plus one slice slot, 16 bytes, per link end).
type holder struct {
	mu     sync.Mutex
	closed bool
	items  []io.Closer
}

// newHolder returns a holder for n items, closed at e's teardown.
func newHolder(e *env, n int) *holder {
	h := &holder{items: make([]io.Closer, 0, n)}
	e.cleanup(func() {
		h.mu.Lock()
		items := h.items
		h.items, h.closed = nil, true
		h.mu.Unlock()
		for _, c := range items {
			_ = c.Close()
		}
	})
	return h
}

// add keeps c, or closes it if teardown has begun.
func (h *holder) add(c io.Closer) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = c.Close()
		return
	}
	h.items = append(h.items, c)
	h.mu.Unlock()
}

func init() {
	idleVariants["tcp"] = func(e *env, n int) func() error {
		l := tcpListen(e)
		h := newHolder(e, 2*n)
		rt := newStreamIdleRT()
		return func() error {
			for i := range n {
				c, s, err := dialAccept(l)
				if err != nil {
					return err
				}
				h.add(c)
				h.add(s)
				if err := rt.do(c, s, i); err != nil {
					return fmt.Errorf("pair %d: %w", i, err)
				}
			}
			return nil
		}
	}
	for _, m := range muxes {
		idleVariants[m.name] = func(e *env, n int) func() error {
			l := tcpListen(e)
			h := newHolder(e, 2*n)
			rt := newStreamIdleRT()
			return func() error {
				for i := range n {
					c, s, err := dialAccept(l)
					if err != nil {
						return err
					}
					srv, err := m.server(s)
					if err != nil {
						c.Close()
						s.Close()
						return err
					}
					h.add(srv)
					cli, err := m.client(c)
					if err != nil {
						c.Close()
						return err
					}
					h.add(cli)
					if err := muxIdleRoundTrip(rt, cli, srv, i); err != nil {
						return fmt.Errorf("%s pair %d: %w", m.name, i, err)
					}
				}
				return nil
			}
		}
	}
}

// dialAccept dials l and accepts the connection.
func dialAccept(l net.Listener) (c, s net.Conn, err error) {
	c, err = net.DialTimeout("tcp", l.Addr().String(), setupLimit)
	if err != nil {
		return nil, nil, err
	}
	s, err = l.Accept() // the dial has completed: this does not block
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, s, nil
}

// muxIdleRoundTrip makes one round trip on a new stream of cli, served
// inline on srv, and closes the stream at both ends.
func muxIdleRoundTrip(rt *streamIdleRT, cli, srv session, i int) error {
	cs, err := cli.open()
	if err != nil {
		return err
	}
	defer cs.Close()
	if err := rt.send(cs, i); err != nil {
		return err
	}
	ss, err := srv.accept()
	if err != nil {
		return err
	}
	defer ss.Close()
	return rt.answer(cs, ss, i)
}

// streamIdleRT is one 32-byte round trip on a byte stream with both ends
// driven by the calling goroutine.
type streamIdleRT struct{ req, srv, resp []byte }

func newStreamIdleRT() *streamIdleRT {
	return &streamIdleRT{req: newMessage(payloadSize), srv: make([]byte, payloadSize), resp: make([]byte, payloadSize)}
}

// do makes round trip i from c to s.
func (rt *streamIdleRT) do(c, s io.ReadWriter, i int) error {
	if err := rt.send(c, i); err != nil {
		return err
	}
	return rt.answer(c, s, i)
}

// send writes request i on c.
func (rt *streamIdleRT) send(c io.Writer, i int) error {
	stamp(rt.req, uint64(i)+1)
	_, err := c.Write(rt.req)
	return err
}

// answer reads the request on s, echoes it and checks the reply on c.
func (rt *streamIdleRT) answer(c io.Reader, s io.ReadWriter, i int) error {
	if _, err := io.ReadFull(s, rt.srv); err != nil {
		return err
	}
	if _, err := s.Write(rt.srv); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, rt.resp); err != nil {
		return err
	}
	return checkPayload(rt.resp, payloadSize, uint64(i)+1)
}

// TestIdleLinks is the smoke test of BenchmarkIdleLinks: every variant with
// a few pairs. A link end holds at least its socket's state, so the heap per
// end must be positive, and the goroutines per end are whole or halves of
// what the variant starts.
func TestIdleLinks(t *testing.T) {
	const n = 50
	for _, name := range idleOrder {
		setup := idleVariants[name]
		if setup == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			nop := func() {}
			heap, g := idleRound(t, setup, n, nop, nop)
			t.Logf("%s: %.0f B/link, %.2f goroutines/link (%d pairs)", name, heap, g, n)
			if heap <= 0 || heap > 1<<20 {
				t.Errorf("%.0f B/link, want in (0, 1 MiB]", heap)
			}
			if g < 0 || g > 8 {
				t.Errorf("%.2f goroutines/link, want in [0, 8]", g)
			}
		})
	}
}
