package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkIdleLinks: what an idle link costs. One op opens 10,000 link
// pairs over loopback and makes one round trip on each, then measures what
// they hold once idle. The dialing ends live in a peer process (this test
// binary run again), so that each process holds 10,000 sockets, not 20,000:
// a common hard RLIMIT_NOFILE is 20,000, and a real node holds one end of
// each of its links, not both. Both processes measure their own ends after
// idleSettle: live heap after a GC and goroutines, per link, reported as
// B/link and goroutines/link (the accepting side, as a storage node holding
// a link to every client) and dialer-B/link and dialer-goroutines/link (the
// dialing side, as a client holding links to many storages).
//
// The round trip: NodeLink, a Conn the dialer opens with AskObject, answered
// with AnswerObject (32 bytes of Data), then closed at both ends; yamux and
// smux, a stream with 32 bytes each way, then closed at both ends; tcp, 32
// bytes each way on the bare connection (the floor: what the socket alone
// costs the Go heap). The op's time is that of opening the 10,000 pairs with
// their round trips, including the peer process's start. The benchmark raises
// RLIMIT_NOFILE if it must, or skips saying why it cannot.
func BenchmarkIdleLinks(b *testing.B) {
	if err := ensureFileLimit(idleLinkPairs + fileSlack); err != nil {
		b.Skipf("IdleLinks needs %d open files per process for %d link pairs: %v", idleLinkPairs+fileSlack, idleLinkPairs, err)
	}
	for _, name := range idleOrder {
		if idleVariants[name] == nil {
			continue
		}
		b.Run(name, func(b *testing.B) {
			var sum idleCost
			for range b.N {
				c := idleRound(b, name, idleLinkPairs, b.StartTimer, b.StopTimer)
				sum.heap += c.heap
				sum.goroutines += c.goroutines
				sum.dialerHeap += c.dialerHeap
				sum.dialerGoroutines += c.dialerGoroutines
			}
			n := float64(b.N)
			b.ReportMetric(sum.heap/n, "B/link")
			b.ReportMetric(sum.goroutines/n, "goroutines/link")
			b.ReportMetric(sum.dialerHeap/n, "dialer-B/link")
			b.ReportMetric(sum.dialerGoroutines/n, "dialer-goroutines/link")
		})
	}
}

const (
	// fileSlack is the descriptors beyond the sockets of the link ends:
	// listener, runtime poller, standard files, the peer's pipes.
	fileSlack = 256
	// idleSettle is how long the links stay idle before they are measured,
	// so that work a transport defers after traffic (flushing, releasing
	// buffers, parking goroutines) is done.
	idleSettle = 250 * time.Millisecond
	// idlePeerEnv, when set in the environment of this test binary, makes
	// it the dialing peer of an IdleLinks round instead of running tests:
	// "variant n address".
	idlePeerEnv = "NEOLINK_BENCH_IDLE_PEER"
)

// idleVariant is one transport of BenchmarkIdleLinks.
type idleVariant struct {
	// listen listens on loopback and returns the address and serve, which
	// accepts n pairs, answers the one round trip of each, and keeps them in
	// h. listen's own resources are closed at e's teardown.
	listen func(e *env, n int, h *holder) (addr string, serve func() error)
	// dial opens n pairs to addr, makes the round trip on each, and keeps
	// them in h.
	dial func(addr string, n int, h *holder) error
}

// idleCost is what an IdleLinks round measured, per link end.
type idleCost struct {
	heap, goroutines             float64 // accepting side
	dialerHeap, dialerGoroutines float64 // dialing side
}

// footprint is the live heap and goroutine count of this process.
type footprint struct {
	heap       int64
	goroutines int
}

// measure collects garbage and returns the footprint. Two collections:
// the first only moves sync.Pool contents to the pools' victim caches, the
// second frees them, so that pooled garbage of earlier work does not vanish
// between two measurements.
func measure() footprint {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return footprint{int64(ms.HeapAlloc), runtime.NumGoroutine()}
}

// idleRound runs one IdleLinks round of variant name with n pairs: this
// process accepts and a peer process dials. start and stop bracket the timed
// part, opening the pairs.
func idleRound(tb testing.TB, name string, n int, start, stop func()) idleCost {
	tb.Helper()
	stop()
	e := startEnv(tb)
	defer e.teardown()
	h := newHolder(n)
	e.cleanup(h.closeAll)
	addr, serve := idleVariants[name].listen(e, n, h)

	peer, err := startIdlePeer(e, name, n, addr)
	if err != nil {
		tb.Fatalf("start the dialing peer: %v", err)
	}
	before := measure()
	start()
	err = serve()
	stop()
	if err != nil {
		tb.Fatalf("accept %d pairs: %v (peer: %s)", n, err, peer.stderrText())
	}
	time.Sleep(idleSettle)
	after := measure()
	dialer, err := peer.result()
	if err != nil {
		tb.Fatalf("dialing peer: %v", err)
	}
	ends := float64(n)
	return idleCost{
		heap:             float64(after.heap-before.heap) / ends,
		goroutines:       float64(after.goroutines-before.goroutines) / ends,
		dialerHeap:       float64(dialer.heap) / ends,
		dialerGoroutines: float64(dialer.goroutines) / ends,
	}
}

// idlePeer is the dialing process of an IdleLinks round.
type idlePeer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser // closing it tells the peer to close its links and exit
	stdout *bufio.Reader
	stderr lockedBuffer
}

// lockedBuffer is a bytes.Buffer that the peer's stderr copier writes while
// the benchmark may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startIdlePeer runs this test binary as the dialing peer. It is killed at
// e's teardown if it has not exited by then.
func startIdlePeer(e *env, name string, n int, addr string) (*idlePeer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &idlePeer{cmd: exec.Command(exe, "-test.run", "^$")}
	p.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s", idlePeerEnv, name, n, addr))
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.stdout = bufio.NewReader(out)
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	// The peer exits when told to at teardown, or on an error: then the
	// listener is closed with everything else, so that the round fails at
	// once instead of waiting for dials that will not come.
	exited := make(chan struct{})
	go func() {
		p.cmd.Wait()
		close(exited)
		e.shutdown()
	}()
	e.cleanup(func() {
		p.stdin.Close()
		select {
		case <-exited:
		case <-time.After(teardownLimit):
			p.cmd.Process.Kill()
			<-exited
		}
	})
	return p, nil
}

// result reads the footprint the peer's links added, as it reports once
// they are idle.
func (p *idlePeer) result() (footprint, error) {
	line, err := p.stdout.ReadString('\n')
	if err != nil {
		return footprint{}, fmt.Errorf("no result (%v): %s", err, p.stderrText())
	}
	var f footprint
	if _, err := fmt.Sscanf(line, "idle %d %d\n", &f.heap, &f.goroutines); err != nil {
		return footprint{}, fmt.Errorf("result %q: %v", line, err)
	}
	return f, nil
}

// stderrText is what the peer has written on stderr so far, trimmed.
func (p *idlePeer) stderrText() string { return strings.TrimSpace(p.stderr.String()) }

// TestMain runs the benchmarks and tests, or, with idlePeerEnv set, the
// dialing peer of an IdleLinks round.
func TestMain(m *testing.M) {
	if spec := os.Getenv(idlePeerEnv); spec != "" {
		if err := runIdlePeer(spec, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "idle peer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runIdlePeer dials as spec says, reports the footprint of the links on out
// once they are idle ("idle <heap bytes> <goroutines>"), and waits for in to
// close before closing them.
func runIdlePeer(spec string, in io.Reader, out io.Writer) error {
	f := strings.Fields(spec)
	if len(f) != 3 {
		return fmt.Errorf("bad spec %q", spec)
	}
	v := idleVariants[f[0]]
	n, err := strconv.Atoi(f[1])
	if v == nil || err != nil || n <= 0 {
		return fmt.Errorf("bad spec %q", spec)
	}
	if err := ensureFileLimit(uint64(n) + fileSlack); err != nil {
		return err
	}
	h := newHolder(n)
	defer h.closeAll()
	before := measure()
	if err := v.dial(f[2], n, h); err != nil {
		return err
	}
	time.Sleep(idleSettle)
	after := measure()
	if _, err := fmt.Fprintf(out, "idle %d %d\n", after.heap-before.heap, after.goroutines-before.goroutines); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, in)
	return err
}

// holder keeps the link ends of an IdleLinks round until closeAll. Its
// capacity is allocated up front so that the measurement sees only the
// transports' memory (plus one slice slot, 16 bytes, per link end).
type holder struct {
	mu     sync.Mutex
	closed bool
	items  []io.Closer
}

func newHolder(n int) *holder { return &holder{items: make([]io.Closer, 0, n)} }

// add keeps c, or closes it if closeAll has run.
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

// closeAll closes everything kept, and what is added later.
func (h *holder) closeAll() {
	h.mu.Lock()
	items := h.items
	h.items, h.closed = nil, true
	h.mu.Unlock()
	for _, c := range items {
		_ = c.Close()
	}
}

func init() {
	idleVariants["tcp"] = &idleVariant{
		listen: func(e *env, n int, h *holder) (string, func() error) {
			l := tcpListen(e)
			return l.Addr().String(), func() error {
				buf := make([]byte, payloadSize)
				for i := range n {
					s, err := l.Accept()
					if err != nil {
						return err
					}
					h.add(s)
					if err := echoOnceKeep(s, buf); err != nil {
						return fmt.Errorf("pair %d: %w", i, err)
					}
				}
				return nil
			}
		},
		dial: func(addr string, n int, h *holder) error {
			rt := newStreamRT()
			for i := range n {
				c, err := net.DialTimeout("tcp", addr, setupLimit)
				if err != nil {
					return err
				}
				h.add(c)
				if err := rt.do(c, i); err != nil {
					return fmt.Errorf("pair %d: %w", i, err)
				}
			}
			return nil
		},
	}
	for _, m := range muxes {
		idleVariants[m.name] = &idleVariant{
			listen: func(e *env, n int, h *holder) (string, func() error) {
				l := tcpListen(e)
				return l.Addr().String(), func() error {
					buf := make([]byte, payloadSize)
					for i := range n {
						s, err := l.Accept()
						if err != nil {
							return err
						}
						srv, err := m.server(s)
						if err != nil {
							s.Close()
							return err
						}
						h.add(srv)
						st, err := srv.accept()
						if err != nil {
							return fmt.Errorf("%s pair %d: %w", m.name, i, err)
						}
						err = echoOnceKeep(st, buf)
						st.Close()
						if err != nil {
							return fmt.Errorf("%s pair %d: %w", m.name, i, err)
						}
					}
					return nil
				}
			},
			dial: func(addr string, n int, h *holder) error {
				rt := newStreamRT()
				for i := range n {
					c, err := net.DialTimeout("tcp", addr, setupLimit)
					if err != nil {
						return err
					}
					cli, err := m.client(c)
					if err != nil {
						c.Close()
						return err
					}
					h.add(cli)
					st, err := cli.open()
					if err != nil {
						return fmt.Errorf("%s pair %d: %w", m.name, i, err)
					}
					err = rt.do(st, i)
					st.Close()
					if err != nil {
						return fmt.Errorf("%s pair %d: %w", m.name, i, err)
					}
				}
				return nil
			},
		}
	}
}

// echoOnceKeep answers one 32-byte request on rw with its copy, using buf,
// and leaves rw open.
func echoOnceKeep(rw io.ReadWriter, buf []byte) error {
	if _, err := io.ReadFull(rw, buf); err != nil {
		return err
	}
	_, err := rw.Write(buf)
	return err
}

// streamRT is one 32-byte round trip on a byte stream, with its buffers.
type streamRT struct{ req, resp []byte }

func newStreamRT() *streamRT {
	return &streamRT{req: newMessage(payloadSize), resp: make([]byte, payloadSize)}
}

// do makes round trip i on rw and checks the reply.
func (rt *streamRT) do(rw io.ReadWriter, i int) error {
	stamp(rt.req, uint64(i)+1)
	if _, err := rw.Write(rt.req); err != nil {
		return err
	}
	if _, err := io.ReadFull(rw, rt.resp); err != nil {
		return err
	}
	return checkPayload(rt.resp, payloadSize, uint64(i)+1)
}

// TestIdleLinks is the smoke test of BenchmarkIdleLinks: every variant with
// a few pairs, a peer process dialing. An end holds at least its socket's
// state, so the heap per end must be positive on both sides; goroutines per
// end are counts of what the variant starts, so they must be small and not
// negative.
func TestIdleLinks(t *testing.T) {
	const n = 50
	for _, name := range idleOrder {
		if idleVariants[name] == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			nop := func() {}
			c := idleRound(t, name, n, nop, nop)
			t.Logf("%s: %.0f B/link, %.2f goroutines/link; dialer %.0f B/link, %.2f goroutines/link (%d pairs)",
				name, c.heap, c.goroutines, c.dialerHeap, c.dialerGoroutines, n)
			for _, h := range []float64{c.heap, c.dialerHeap} {
				if h <= 0 || h > 1<<20 {
					t.Errorf("%.0f B/link, want in (0, 1 MiB]", h)
				}
			}
			for _, g := range []float64{c.goroutines, c.dialerGoroutines} {
				if g < 0 || g > 8 {
					t.Errorf("%.2f goroutines/link, want in [0, 8]", g)
				}
			}
		})
	}
}

// TestRunIdlePeerRejects checks the peer's argument parsing.
func TestRunIdlePeerRejects(t *testing.T) {
	for _, spec := range []string{"", "tcp 10", "nope 10 127.0.0.1:1", "tcp x 127.0.0.1:1", "tcp 0 127.0.0.1:1"} {
		if err := runIdlePeer(spec, strings.NewReader(""), io.Discard); err == nil {
			t.Errorf("spec %q accepted", spec)
		}
	}
}
