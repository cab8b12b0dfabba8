package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Sizes and limits shared by every variant.
const (
	payloadSize     = 32               // bytes of one RTT request and of its reply
	answer4KiB      = 4 << 10          // Data bytes of a NodeLink answer in the *-4KiB variants
	size1MiB        = 1 << 20          // bytes of one BenchmarkThroughput1MiB message
	size64KiB       = 64 << 10         // bytes of one BenchmarkThroughput64KiB message
	parallelWorkers = 64               // concurrent streams in BenchmarkParallel64
	idleConns       = 10000            // Conns opened by BenchmarkIdleConnMemory
	idleLinkPairs   = 10000            // link pairs opened by BenchmarkIdleLinks
	setupLimit      = 10 * time.Second // listen + dial + handshake
	runLimit        = 3 * time.Minute  // one benchmark run; then its connections are closed
	teardownLimit   = 10 * time.Second // for server goroutines to end after teardown
	warmUpTime      = 100 * time.Millisecond
)

// pattern fills every payload after its 8-byte sequence-number stamp, so a
// reply is checked in full: stamp and pattern.
var pattern = func() []byte {
	p := make([]byte, size1MiB)
	for i := range p {
		p[i] = byte(i*7 + 1)
	}
	return p
}()

// shape is the size of one round trip. NodeLink variants answer with an
// AnswerObject carrying data bytes of Data; byte-stream variants (TCP,
// net.Pipe, yamux, smux) write a request of req bytes and read a reply of
// resp bytes.
type shape struct {
	data      int
	req, resp int
}

// The two round-trip shapes. small is the classic 32-byte ping-pong. With
// answers4KiB the stream variants carry exactly the bytes of the N-framed
// AskObject and AnswerObject packets with 4 KiB of Data, so that TCP and
// NodeLink move the same bytes (see wire_test.go).
var (
	small       = shape{data: payloadSize, req: payloadSize, resp: payloadSize}
	answers4KiB = shape{data: answer4KiB, req: askPacketSizeN(), resp: answerPacketSizeN(answer4KiB)}
)

// Canonical variant order: the order of the sub-benchmarks and of the report.
var (
	// Each NodeLink variant follows the TCP server it is held to, so that the
	// two run seconds apart in every pass.
	rttOrder = []string{
		"tcp-direct", "link-N-ask", "link-M-ask", "link-N-ask1", "link-M-ask1",
		"link-N-ask-acceptloop", "link-M-ask-acceptloop",
		"tcp-serverecv", "tcp-goperreq",
		"link-N-ask1-go", "link-M-ask1-go", "link-N-connperreq", "link-M-connperreq",
		"tcp-direct-4KiB", "link-N-ask-4KiB", "link-M-ask-4KiB",
		"pipe-direct", "link-N-pipe-ask",
		"yamux-stream", "yamux-stream-per-req", "smux-stream", "smux-stream-per-req",
	}
	throughput1MiBOrder  = []string{"tcp", "link-N", "link-M", "yamux", "smux"}
	throughput64KiBOrder = []string{"tcp", "link-N", "link-M"}
	parallelOrder        = []string{"tcp-64conns", "link-N", "link-M", "yamux", "smux"}
	idleOrder            = []string{"tcp", "link-N", "yamux", "smux"}
)

// rttFunc performs round trip number i (a request stamped with i+1) and checks
// the reply. It must not allocate beyond what the transport does.
type rttFunc func(i int) error

// rttSetup connects one variant for BenchmarkRTT and returns its round trip.
type rttSetup func(e *env) rttFunc

// tputSetup connects one variant for a throughput benchmark that will carry
// n messages of size bytes: send transmits message i (0 <= i < n); finish
// returns once the receiver has checked all n of them.
type tputSetup func(e *env, size, n int) (send func(i int) error, finish func() error)

// parSetup connects one variant for BenchmarkParallel64: one rttFunc per
// worker, each on its own stream, with round trips of shape sh.
type parSetup func(e *env, workers int, sh shape) []rttFunc

// Variant registries, filled by init functions of the transport files.
var (
	rttVariants        = map[string]rttSetup{}
	throughputVariants = map[string]tputSetup{}
	parallelVariants   = map[string]parSetup{}
	idleVariants       = map[string]*idleVariant{}
)

// BenchmarkRTT measures one request/reply round trip: 32 bytes each way, or
// a 4 KiB answer for the *-4KiB variants.
func BenchmarkRTT(b *testing.B) {
	warmUp(b)
	for _, name := range rttOrder {
		setup := rttVariants[name]
		if setup == nil {
			continue // built without it (-tags nolinkbench)
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			rt := setup(e)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := rt(i); err != nil {
					b.Fatalf("round trip %d: %v", i, err)
				}
			}
			b.StopTimer()
		})
	}
}

// warmUp runs TCP round trips untimed for warmUpTime, so that the first
// variant measured in a fresh process (tcp-direct, the reference of most
// RTT targets) does not pay for the process's start: its first run was
// consistently slower than its second in the same process.
func warmUp(b *testing.B) {
	e := startEnv(b)
	defer e.teardown()
	rt := rttVariants["tcp-direct"](e)
	for i, t0 := 0, time.Now(); time.Since(t0) < warmUpTime; i++ {
		if err := rt(i); err != nil {
			b.Fatalf("warm-up round trip %d: %v", i, err)
		}
	}
}

// BenchmarkThroughput1MiB sends 1 MiB messages back to back in one direction.
// The timing ends when the receiver has read and checked the last one.
func BenchmarkThroughput1MiB(b *testing.B) { benchThroughput(b, size1MiB, throughput1MiBOrder) }

// BenchmarkThroughput64KiB is BenchmarkThroughput1MiB with 64 KiB messages.
func BenchmarkThroughput64KiB(b *testing.B) { benchThroughput(b, size64KiB, throughput64KiBOrder) }

func benchThroughput(b *testing.B, size int, order []string) {
	for _, name := range order {
		setup := throughputVariants[name]
		if setup == nil {
			continue
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			send, finish := setup(e, size, b.N)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := send(i); err != nil {
					b.Fatalf("message %d: %v", i, err)
				}
			}
			if err := finish(); err != nil {
				b.Fatalf("finish: %v", err)
			}
			b.StopTimer()
		})
	}
}

// BenchmarkParallel64 runs round trips of 32 bytes each way from 64
// goroutines, each on its own stream, b.N in total. It reports round trips
// per second (rt/s) and the median and 99th percentile round-trip time in
// microseconds.
func BenchmarkParallel64(b *testing.B) { benchParallel(b, small) }

// BenchmarkParallel64_4KiB is BenchmarkParallel64 with 4 KiB answers. (A Go
// benchmark name cannot contain "-", hence the underscore.)
func BenchmarkParallel64_4KiB(b *testing.B) { benchParallel(b, answers4KiB) }

func benchParallel(b *testing.B, sh shape) {
	for _, name := range parallelOrder {
		setup := parallelVariants[name]
		if setup == nil {
			continue
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			rts := setup(e, parallelWorkers, sh)
			b.ReportAllocs()
			lat, _, err := runParallel(e, rts, b.N, b.ResetTimer)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
			p50, p99 := percentiles(lat)
			b.ReportMetric(float64(p50)/1e3, "p50-us")
			b.ReportMetric(float64(p99)/1e3, "p99-us")
		})
	}
}

// runParallel runs n round trips split over len(rts) workers, worker w using
// rts[w] and op indices of its own range (so a reply routed to the wrong stream
// is detected). start is called once every worker is ready, just before they
// are released. It returns each op's latency and the elapsed time. On the
// first error it shuts e down so that the other workers stop too.
func runParallel(e *env, rts []rttFunc, n int, start func()) (lat []time.Duration, elapsed time.Duration, err error) {
	lat = make([]time.Duration, n)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		gate    = make(chan struct{})
	)
	workers := len(rts)
	for w, rt := range rts {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			for i := lo; i < hi; i++ {
				t0 := time.Now()
				if rerr := rt(i); rerr != nil {
					errOnce.Do(func() { err = fmt.Errorf("worker %d, round trip %d: %w", w, i, rerr) })
					e.shutdown()
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	start()
	t0 := time.Now()
	close(gate)
	wg.Wait()
	return lat, time.Since(t0), err
}

// percentiles returns the nearest-rank 50th and 99th percentiles of lat,
// sorting it in place.
func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	rank := func(p int) time.Duration {
		k := (len(lat)*p + 99) / 100 // ceil(len*p/100), 1-based
		return lat[max(k, 1)-1]
	}
	return rank(50), rank(99)
}

// stamp writes seq big-endian into the first 8 bytes of p.
func stamp(p []byte, seq uint64) { binary.BigEndian.PutUint64(p, seq) }

// checkPayload checks that p is a payload of size bytes stamped with seq.
func checkPayload(p []byte, size int, seq uint64) error {
	if len(p) != size {
		return fmt.Errorf("payload of %d bytes, want %d", len(p), size)
	}
	if got := binary.BigEndian.Uint64(p); got != seq {
		return fmt.Errorf("payload stamped %d, want %d", got, seq)
	}
	if !bytes.Equal(p[8:], pattern[8:size]) {
		return fmt.Errorf("payload %d: content differs", seq)
	}
	return nil
}

// newMessage returns a size-byte message buffer filled with pattern.
func newMessage(size int) []byte { return slices.Clone(pattern[:size]) }

// stampMessage stamps a throughput message at both ends.
func stampMessage(p []byte, seq uint64) {
	binary.BigEndian.PutUint64(p, seq)
	binary.BigEndian.PutUint64(p[len(p)-8:], seq)
}

// checkMessage checks the length and both stamps of a throughput message
// (not every byte: that would cost a memory compare per message in every
// variant).
func checkMessage(p []byte, size int, seq uint64) error {
	if len(p) != size {
		return fmt.Errorf("message of %d bytes, want %d", len(p), size)
	}
	if h, t := binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[len(p)-8:]); h != seq || t != seq {
		return fmt.Errorf("message stamped %d…%d, want %d", h, t, seq)
	}
	return nil
}

// env owns what one benchmark run sets up: the closers that tear it down and
// the server goroutines that must be gone afterwards. Teardown runs as a
// Cleanup of the run, outside the timed region: it closes everything (last
// registered first), waits for the server goroutines, reports their errors,
// and fails the run if any goroutine started since newEnv is still alive.
// A watchdog closes everything if the run exceeds runLimit, so a stuck
// transport fails the benchmark instead of hanging it.
type env struct {
	tb       testing.TB
	baseline int // goroutines before setup
	watchdog *time.Timer
	timedOut atomic.Bool
	closing  atomic.Bool // set before the closers run; server errors after it are expected
	wg       sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	closers  []func()
	serveErr error
}

// newEnv starts an env for the run tb and registers its teardown.
func newEnv(tb testing.TB) *env {
	tb.Helper()
	e := startEnv(tb)
	tb.Cleanup(e.teardown)
	return e
}

// startEnv starts an env whose caller calls teardown itself (once), for
// benchmarks that set up and tear down several times in one run.
func startEnv(tb testing.TB) *env {
	e := &env{tb: tb, baseline: runtime.NumGoroutine()}
	e.watchdog = time.AfterFunc(runLimit, func() {
		e.timedOut.Store(true)
		e.shutdown()
	})
	return e
}

// cleanup registers f to run at teardown, before the ones registered earlier.
// After shutdown f runs at once.
func (e *env) cleanup(f func()) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		f()
		return
	}
	e.closers = append(e.closers, f)
	e.mu.Unlock()
}

// closeOnTeardown registers c.Close (its error is ignored).
func (e *env) closeOnTeardown(c interface{ Close() error }) {
	e.cleanup(func() { _ = c.Close() })
}

// shutdown runs the closers once, last registered first.
func (e *env) shutdown() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.closing.Store(true)
	cs := e.closers
	e.closers = nil
	e.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// serve runs f as a server goroutine. An error it returns before teardown
// fails the run (and shuts e down so the client side errors out too).
func (e *env) serve(what string, f func() error) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := f(); err != nil {
			e.fail(what, err)
		}
	}()
}

// fail records a server error, as serve does for its goroutine's: before
// teardown it fails the run and shuts e down.
func (e *env) fail(what string, err error) {
	if e.closing.Load() {
		return
	}
	e.mu.Lock()
	if e.serveErr == nil {
		e.serveErr = fmt.Errorf("%s: %w", what, err)
	}
	e.mu.Unlock()
	e.shutdown()
}

// fatalf fails the run during setup.
func (e *env) fatalf(format string, args ...any) {
	e.tb.Helper()
	e.tb.Fatalf(format, args...)
}

// teardown closes everything and checks that nothing is left running.
func (e *env) teardown() {
	e.watchdog.Stop()
	e.shutdown()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(teardownLimit):
		e.tb.Errorf("server goroutines still running %v after teardown:\n%s", teardownLimit, allStacks())
		return
	}
	e.mu.Lock()
	serveErr := e.serveErr
	e.mu.Unlock()
	if serveErr != nil {
		e.tb.Errorf("server: %v", serveErr)
	}
	if e.timedOut.Load() {
		e.tb.Errorf("run exceeded %v; its connections were closed", runLimit)
	}
	deadline := time.Now().Add(teardownLimit)
	for runtime.NumGoroutine() > e.baseline {
		if time.Now().After(deadline) {
			e.tb.Errorf("%d goroutines left after teardown (%d before setup):\n%s",
				runtime.NumGoroutine(), e.baseline, allStacks())
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// tcpListen listens on an ephemeral loopback port, closed at teardown.
func tcpListen(e *env) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.fatalf("listen: %v", err)
	}
	e.closeOnTeardown(l)
	return l
}

// tcpPairs returns n connected loopback TCP connection pairs.
func tcpPairs(e *env, n int) (clients, servers []net.Conn) {
	l := tcpListen(e)
	for range n {
		c, err := net.DialTimeout("tcp", l.Addr().String(), setupLimit)
		if err != nil {
			e.fatalf("dial: %v", err)
		}
		e.closeOnTeardown(c)
		s, err := l.Accept() // the dial has completed: this does not block
		if err != nil {
			e.fatalf("accept: %v", err)
		}
		e.closeOnTeardown(s)
		clients, servers = append(clients, c), append(servers, s)
	}
	return clients, servers
}

// tcpPair returns one connected loopback TCP connection pair.
func tcpPair(e *env) (client, server net.Conn) {
	c, s := tcpPairs(e, 1)
	return c[0], s[0]
}
