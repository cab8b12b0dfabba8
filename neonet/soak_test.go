package neonet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/proto"
)

// TestSoak runs links through faulty paths for NEOLINK_SOAK (a duration;
// `make soak` sets it), or for a few seconds when it is unset, and checks
// that nothing accepted is lost without an error to someone:
//   - every Ask, Ask1 and Ping returns, with its correct answer or an error;
//   - every notification a Send or Send1 accepted (nil error) reaches the
//     server's application, or the client's link reports a failure (Err
//     matches ErrLinkDown, or Shutdown fails), or the server's link fails
//     in time for the failure to be that of this traffic (soakServerSlack);
//   - a call that fails with ErrLinkDown finds Done closed, and no call
//     gets the raw error of a socket the link closed itself;
//   - links on clean and on slow (throttled) paths never fail, keepalive
//     included, and their calls never fail;
//   - no goroutine is left at the end.
//
// Each slot is a server (ListenLink) behind a proxy on loopback that
// applies one fault to every connection through it, at a random moment:
// none; a reset (RST both ways); a stall of both directions for up to
// 2.5 s, after which the path resumes; a throttled path (128-512 KiB/s each
// way); 32 random bytes injected into one direction (possibly mid-packet);
// or a freeze: the path stops for good while its sockets stay open, as
// with a hung peer, so only keepalive, timeouts and Shutdown can tell. On
// each slot the client dials link after link, each living a random time
// with several workers asking, uploading and notifying concurrently, then
// shut down gracefully with Shutdown.
func TestSoak(t *testing.T) {
	dur := 3 * time.Second
	if d := os.Getenv("NEOLINK_SOAK"); d != "" {
		var err error
		if dur, err = time.ParseDuration(d); err != nil {
			t.Fatalf("NEOLINK_SOAK: %v", err)
		}
	}
	leakCheck(t)
	deadline := time.Now().Add(dur)
	rx := &soakReceived{seen: make(map[uint64]struct{})}
	var slots []*soakSlot
	i := 0
	for _, f := range []soakFault{faultNone, faultRST, faultStall, faultSlow, faultGarbage, faultFreeze} {
		if only := os.Getenv("NEOLINK_SOAK_FAULTS"); only != "" && !strings.Contains(","+only+",", ","+f.String()+",") {
			continue
		}
		for _, light := range []bool{false, true} {
			slots = append(slots, newSoakSlot(t, i, f, light, encodings[i%2], rx))
			i++
		}
	}
	var wg sync.WaitGroup
	for _, s := range slots {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(deadline) }()
	}
	if !fuzzWaitGroup(&wg, dur+2*time.Minute) {
		t.Fatalf("soak clients still blocked 2 min after the deadline\n%s", fuzzStacks())
	}
	for _, s := range slots {
		s.stop()
	}

	var lost, unconfirmed, sent, corrupt int
	for _, s := range slots {
		sl := s.evaluate(t, rx)
		lost += sl.lost
		unconfirmed += sl.unconfirmed
		sent += sl.sent
		corrupt += int(s.corrupt.Load())
		t.Log(sl.report)
		if dur >= 30*time.Second && s.fault != faultNone && s.fault != faultSlow && s.proxy.hit.Load() == 0 {
			t.Errorf("%s: the fault never hit a connection", s.name)
		}
	}
	t.Logf("%v: %d notifications sent, %d lost, %d unconfirmed on failed links; %d corrupt answers",
		dur, sent, lost, unconfirmed, corrupt)
	if lost != 0 || corrupt != 0 {
		t.Errorf("lost %d notifications, %d corrupt answers", lost, corrupt)
	}
}

type soakFault uint8

const (
	faultNone soakFault = iota
	faultRST
	faultStall
	faultSlow
	faultGarbage
	faultFreeze
)

func (f soakFault) String() string {
	return [...]string{"clean", "rst", "stall", "slow", "garbage", "freeze"}[f]
}

// soakReceived is what the servers' applications received: notification
// TIDs, link id << 32 | sequence number.
type soakReceived struct {
	mu   sync.Mutex
	seen map[uint64]struct{}
}

func (r *soakReceived) add(tid uint64) {
	r.mu.Lock()
	r.seen[tid] = struct{}{}
	r.mu.Unlock()
}

func (r *soakReceived) has(tid uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.seen[tid]
	return ok
}

// soakLinkIDs numbers client links across slots.
var soakLinkIDs atomic.Uint32

// soakSlot is one server, its faulty proxy, and the client dialing through it.
type soakSlot struct {
	t      *testing.T
	name   string
	fault  soakFault
	light  bool
	enc    proto.Encoding
	seed   uint64
	ll     *LinkListener
	proxy  *soakProxy
	rx     *soakReceived
	ccfg   Config
	server sync.WaitGroup

	mu         sync.Mutex
	links      []*soakLink
	errs       map[string]int // client call errors by kind
	downs      map[string]int // client links that failed, by cause
	serverDown map[string]soakServerEnd
	asks       atomic.Int64
	answers    atomic.Int64
	corrupt    atomic.Int64
	dials      atomic.Int64
}

// soakLink is what one client link sent and how it ended.
type soakLink struct {
	id     uint32
	local  string // the client's address, as the proxy saw it
	sent   []uint64
	failed bool
	cause  string
	end    time.Time // when Shutdown (and Close) returned
}

// soakServerEnd is how and when a server link failed.
type soakServerEnd struct {
	kind string
	at   time.Time
}

// soakServerSlack is how long after the client's link ended its server
// link may still fail and count as the error someone got: the time for a
// reset or a close to cross the proxy. A server link torn down much later
// (when the proxy closes at the end of the run) told nobody in time.
const soakServerSlack = 2 * time.Second

func soakConfig() *Config {
	cfg := DefaultConfig()
	cfg.KeepAlive = 250 * time.Millisecond
	cfg.KeepAliveTimeout = time.Second
	cfg.WriteTimeout = 2 * time.Second
	return cfg
}

func newSoakSlot(t *testing.T, i int, f soakFault, light bool, enc proto.Encoding, rx *soakReceived) *soakSlot {
	s := &soakSlot{
		t: t, fault: f, light: light, enc: enc, seed: uint64(i), rx: rx,
		errs: make(map[string]int), downs: make(map[string]int), serverDown: make(map[string]soakServerEnd),
	}
	style := "conn"
	if light {
		style = "light"
	}
	s.name = fmt.Sprintf("%s/%s/%v", f, style, enc)
	ll, err := ListenLink("tcp", "127.0.0.1:0", soakConfig())
	if err != nil {
		t.Fatal(err)
	}
	s.ll = ll
	s.proxy = newSoakProxy(t, ll.Addr().String(), f, uint64(i))
	s.ccfg = *soakConfig()
	s.ccfg.Encoding = enc
	s.ccfg.AnswerPing = true // the client never accepts
	s.server.Add(1)
	go s.serve()
	return s
}

// serve accepts links and serves each until it ends, recording
// notifications and whether the link failed.
func (s *soakSlot) serve() {
	defer s.server.Done()
	for {
		l, err := s.ll.Accept()
		if err != nil {
			return
		}
		s.server.Add(1)
		start := time.Now()
		go func() {
			defer s.server.Done()
			if s.light {
				s.serveLight(l)
			} else {
				s.serveConns(l)
			}
			err := l.Err()
			l.Close()
			if errors.Is(err, ErrLinkDown) && !errors.Is(err, errPeerClosed) {
				s.mu.Lock()
				s.serverDown[l.RemoteAddr().String()] = soakServerEnd{soakKind(err), time.Now()}
				s.mu.Unlock()
				if s.fault == faultNone || s.fault == faultSlow {
					s.t.Logf("%s: server link %s failed after %v: %v; %+v", s.name, l, time.Since(start), err, l.Stats())
				}
			}
		}()
	}
}

func (s *soakSlot) serveConns(l *NodeLink) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for {
				m, err := c.Recv()
				if fuzzDecodeErr(err) {
					continue
				}
				if err != nil {
					return
				}
				if n, ok := m.(*proto.InvalidateObjects); ok {
					s.rx.add(uint64(n.TID))
					continue
				}
				if c.Send(answerFor(m)) != nil {
					return
				}
			}
		}()
	}
}

func (s *soakSlot) serveLight(l *NodeLink) {
	for {
		req, err := l.Recv1()
		if fuzzDecodeErr(err) {
			continue
		}
		if err != nil {
			return
		}
		if n, ok := req.Msg.(*proto.InvalidateObjects); ok {
			s.rx.add(uint64(n.TID))
		} else {
			req.Reply(answerFor(req.Msg))
		}
		req.Close()
	}
}

// stop closes the proxy (every connection through it) and the listener,
// and waits for the server's goroutines.
func (s *soakSlot) stop() {
	s.proxy.close()
	s.ll.Close()
	if !fuzzWaitGroup(&s.server, time.Minute) {
		s.t.Errorf("%s: server links still open a minute after their peers closed\n%s", s.name, fuzzStacks())
	}
}

// run dials link after link until the deadline.
func (s *soakSlot) run(deadline time.Time) {
	rng := rand.New(rand.NewPCG(s.seed, uint64(time.Now().UnixNano())))
	for time.Now().Before(deadline) {
		s.runLink(rng, deadline)
	}
}

const soakWorkers = 4

func (s *soakSlot) runLink(rng *rand.Rand, deadline time.Time) {
	s.dials.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	l, err := DialLink(ctx, "tcp", s.proxy.addr(), &s.ccfg)
	cancel()
	if err != nil {
		s.count(s.errs, "dial: "+soakKind(err))
		time.Sleep(10 * time.Millisecond)
		return
	}
	sl := &soakLink{id: soakLinkIDs.Add(1), local: l.LocalAddr().String()}
	end := time.Now().Add(time.Duration(300+rng.IntN(2700)) * time.Millisecond)
	if end.After(deadline) {
		end = deadline
	}
	var seq atomic.Uint32
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range soakWorkers {
		wg.Add(1)
		wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
		go func() {
			defer wg.Done()
			s.work(l, wrng, end, func() uint64 { return uint64(sl.id)<<32 | uint64(seq.Add(1)) },
				func(tid uint64) { mu.Lock(); sl.sent = append(sl.sent, tid); mu.Unlock() })
		}()
	}
	wg.Wait()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	serr := l.Shutdown(sctx)
	scancel()
	l.Close()
	sl.end = time.Now()
	if lerr := l.Err(); errors.Is(lerr, ErrLinkDown) {
		sl.failed, sl.cause = true, soakKind(lerr)
	} else if serr != nil {
		sl.failed, sl.cause = true, "shutdown: "+soakKind(serr)
	}
	s.mu.Lock()
	s.links = append(s.links, sl)
	if sl.failed {
		s.downs[sl.cause]++
	}
	s.mu.Unlock()
}

// work runs random calls on l until end or until the link is down.
func (s *soakSlot) work(l *NodeLink, rng *rand.Rand, end time.Time, nextTID func() uint64, sent func(uint64)) {
	var ac, nc *Conn // for asks, for notifications
	defer func() {
		if ac != nil {
			ac.Close()
		}
		if nc != nil {
			nc.Close()
		}
	}()
	var r proto.AnswerObject
	// Every call returns, answered or failed, within its timeout. On a
	// frozen path only the timeout ends it: keep it short there.
	askTimeout := 10 * time.Second
	if s.fault == faultFreeze {
		askTimeout = 2 * time.Second
	}
	for time.Now().Before(end) {
		select {
		case <-l.Done():
			return
		default:
		}
		oid := proto.Oid(rng.Uint32() & 0xfff)
		if rng.IntN(100) == 0 {
			oid = proto.Oid(rng.Uint32() & 0xffff)
		}
		ctx, cancel := context.WithTimeout(context.Background(), askTimeout)
		var err error
		switch op := rng.IntN(100); {
		case op < 70:
			s.asks.Add(1)
			req := &proto.AskObject{OID: oid}
			if s.light {
				err = l.Ask1Context(ctx, req, &r)
			} else {
				if ac == nil {
					if ac, err = l.NewConn(); err != nil {
						break
					}
				}
				if err = ac.AskContext(ctx, req, &r); err != nil {
					ac.Close()
					ac = nil
				}
			}
			if err == nil {
				if r.OID != oid || len(r.Data) != int(oid&0xffff) {
					s.corrupt.Add(1)
					s.t.Errorf("%s: asked oid %d, got oid %d with %d bytes", s.name, oid, r.OID, len(r.Data))
				} else {
					s.answers.Add(1)
				}
			}
		case op < 95:
			tid := nextTID()
			msg := &proto.InvalidateObjects{TID: proto.Tid(tid)}
			if op < 73 {
				// An upload: ~40 KB, which a slow path takes a while to carry.
				msg.OIDList = bigOIDList
			}
			if s.light {
				err = l.Send1(msg)
			} else {
				if nc == nil {
					if nc, err = l.NewConn(); err != nil {
						break
					}
				}
				if err = nc.Send(msg); err != nil {
					nc.Close()
					nc = nil
				}
			}
			if err == nil {
				sent(tid)
			}
		case s.light:
			err = l.Ping(ctx)
		default:
			if ac != nil {
				ac.Close()
				ac = nil
			}
		}
		cancel()
		if err == nil {
			continue
		}
		s.count(s.errs, soakKind(err))
		if errors.Is(err, net.ErrClosed) && !errors.Is(err, ErrLinkDown) && !errors.Is(err, ErrLinkClosed) {
			// The socket was closed by the link itself: the call must say
			// why (see TestSoakSendAfterReset).
			s.t.Errorf("%s: a call got %v; the link: %v", s.name, err, l.Err())
		}
		if errors.Is(err, ErrLinkDown) {
			select {
			case <-l.Done():
			case <-time.After(5 * time.Second):
				s.t.Errorf("%s: a call failed with %v, yet Done is not closed 5 s later", s.name, err)
			}
			return
		}
	}
}

// bigOIDList makes a notification of about 40 KB (msgpack bin8 per oid).
var bigOIDList = make([]proto.Oid, 4096)

func (s *soakSlot) count(m map[string]int, kind string) {
	s.mu.Lock()
	m[kind]++
	s.mu.Unlock()
}

type soakSlotResult struct {
	sent, lost, unconfirmed int
	report                  string
}

// evaluate checks each link's notifications against what the server
// received, and the slot's invariants.
func (s *soakSlot) evaluate(t *testing.T, rx *soakReceived) soakSlotResult {
	var res soakSlotResult
	s.mu.Lock()
	defer s.mu.Unlock()
	failed, serverFailed := 0, 0
	serverKinds := make(map[string]int)
	for _, e := range s.serverDown {
		serverKinds[e.kind]++
	}
	for _, sl := range s.links {
		missing := 0
		for _, tid := range sl.sent {
			if !rx.has(tid) {
				missing++
			}
		}
		res.sent += len(sl.sent)
		srv, srvFailed := s.serverDown[s.proxy.serverAddr(sl.local)]
		srvFailed = srvFailed && srv.at.Before(sl.end.Add(soakServerSlack))
		if sl.failed {
			failed++
		}
		if srvFailed {
			serverFailed++
		}
		switch {
		case missing == 0:
		case sl.failed || srvFailed:
			res.unconfirmed += missing
		default:
			res.lost += missing
			if res.lost == missing {
				t.Errorf("%s: link %d (%s): %d of %d notifications lost, yet neither link failed",
					s.name, sl.id, sl.local, missing, len(sl.sent))
			}
		}
	}
	asks, answers := s.asks.Load(), s.answers.Load()
	res.report = fmt.Sprintf("%-22s links %d (dials %d), failed %d client-side %v, server-side %v; fault hit %d conns; "+
		"asks %d, answered %d, errors %v; notifications %d, lost %d, unconfirmed %d",
		s.name, len(s.links), s.dials.Load(), failed, sortedCounts(s.downs), sortedCounts(serverKinds), s.proxy.hit.Load(),
		asks, answers, sortedCounts(s.errs), res.sent, res.lost, res.unconfirmed)
	if s.fault == faultNone || s.fault == faultSlow {
		if failed != 0 || len(s.serverDown) != 0 || len(s.errs) != 0 {
			t.Errorf("%s: a lossless path had failures: %s", s.name, res.report)
		}
	}
	return res
}

func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// soakKind names an error for the counts: what the call got, and for a
// failed link, why it went down.
func soakKind(err error) string {
	var pe *proto.Error
	var fe *proto.FrameError
	var le *LinkError
	var oe *net.OpError
	switch {
	case errors.As(err, &pe):
		return "answer " + pe.Message
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrLinkClosed):
		return "link closed"
	case errors.Is(err, ErrClosedConn):
		return "conn closed"
	case errors.Is(err, ErrConnOverflow):
		return "overflow"
	case !errors.Is(err, ErrLinkDown) && errors.As(err, &oe):
		// The call whose write failed gets the I/O error itself (Conn.Send).
		return "io: " + oe.Op + ": " + soakErrno(oe.Err)
	case !errors.Is(err, ErrLinkDown):
		return "other: " + err.Error()
	case errors.Is(err, ErrAcceptOverflow):
		return "down: accept overflow"
	case errors.Is(err, ErrWriteTimeout):
		return "down: write timeout"
	case errors.As(err, &le) && le.Op == "keepalive":
		return "down: keepalive"
	case errors.Is(err, errPeerClosed):
		return "down: peer closed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "down: truncated"
	case errors.As(err, &fe):
		return "down: bad framing"
	case errors.Is(err, syscall.ECONNRESET):
		return "down: reset"
	case errors.Is(err, syscall.EPIPE):
		return "down: broken pipe"
	}
	return "down: " + err.Error()
}

func soakErrno(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// soakProxy forwards TCP connections to a target on loopback, applying a
// fault to each. Half-closes pass through (so a graceful Shutdown works
// through it) and so do resets.
type soakProxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	fault  soakFault
	seed   uint64
	closed chan struct{}
	wg     sync.WaitGroup
	hit    atomic.Int64 // connections the fault was applied to

	mu    sync.Mutex
	open  map[*net.TCPConn]bool
	pairs map[string]string // client address → the proxy's address at the server
	n     uint64
	done  bool
}

func newSoakProxy(t testing.TB, target string, f soakFault, seed uint64) *soakProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &soakProxy{t: t, ln: ln, target: target, fault: f, seed: seed, closed: make(chan struct{}),
		open: make(map[*net.TCPConn]bool), pairs: make(map[string]string)}
	p.wg.Add(1)
	go p.serve()
	return p
}

func (p *soakProxy) addr() string { return p.ln.Addr().String() }

func (p *soakProxy) serverAddr(client string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pairs[client]
}

func (p *soakProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		sc, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.done {
			p.mu.Unlock()
			c.Close()
			sc.Close()
			return
		}
		p.n++
		pc := &proxyConn{p: p, c: c.(*net.TCPConn), s: sc.(*net.TCPConn)}
		p.open[pc.c], p.open[pc.s] = true, true
		p.pairs[c.RemoteAddr().String()] = sc.LocalAddr().String()
		rng := rand.New(rand.NewPCG(p.seed, p.n))
		p.mu.Unlock()
		pc.plan(rng)
		if p.fault == faultSlow {
			// A bottleneck, not a buffering middlebox: with small proxy
			// buffers, the peers' kernels see their data acknowledged at
			// the path's rate. (Behind a TCP-terminating proxy that
			// absorbs more than KeepAliveTimeout's worth of data, the
			// acknowledgements say nothing about the far end, and keepalive
			// must be given a timeout longer than the proxy's queueing.)
			for _, tc := range []*net.TCPConn{pc.c, pc.s} {
				tc.SetReadBuffer(16 << 10)
				tc.SetWriteBuffer(16 << 10)
			}
		}
		p.wg.Add(2)
		go pc.forward(pc.s, pc.c, true)
		go pc.forward(pc.c, pc.s, false)
	}
}

// close stops accepting, closes every connection and waits for the
// forwarders.
func (p *soakProxy) close() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	close(p.closed)
	p.ln.Close()
	for c := range p.open {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// proxyConn is one proxied connection: client c, server s.
type proxyConn struct {
	p       *soakProxy
	c, s    *net.TCPConn
	at      time.Time     // when the fault strikes
	stall   time.Duration // faultStall: how long both directions stop
	rate    int           // faultSlow: bytes per second each way
	junkUp  bool          // faultGarbage: into the client → server direction
	struck  atomic.Bool
	cutOnce sync.Once
	ended   atomic.Int32
}

func (pc *proxyConn) plan(rng *rand.Rand) {
	pc.at = time.Now().Add(time.Duration(100+rng.IntN(1400)) * time.Millisecond)
	pc.stall = time.Duration(200+rng.IntN(2300)) * time.Millisecond
	pc.rate = (128 + rng.IntN(384)) << 10
	pc.junkUp = rng.IntN(2) == 0
	if pc.p.fault == faultSlow {
		pc.p.hit.Add(1)
	}
}

// strike reports whether the fault strikes now, counting the connection
// the first time.
func (pc *proxyConn) strike() bool {
	if time.Now().Before(pc.at) {
		return false
	}
	if !pc.struck.Swap(true) {
		pc.p.hit.Add(1)
	}
	return true
}

// cut resets both connections.
func (pc *proxyConn) cut() {
	pc.cutOnce.Do(func() {
		pc.c.SetLinger(0)
		pc.s.SetLinger(0)
		pc.c.Close()
		pc.s.Close()
	})
}

func (pc *proxyConn) forward(dst, src *net.TCPConn, up bool) {
	defer pc.p.wg.Done()
	defer pc.end()
	buf := make([]byte, 16<<10)
	junk := make([]byte, 32)
	junked := false
	for {
		n, err := src.Read(buf)
		if n > 0 {
			switch f := pc.p.fault; {
			case f == faultRST && pc.strike():
				pc.cut()
				return
			case f == faultStall && pc.strike() && time.Now().Before(pc.at.Add(pc.stall)):
				select {
				case <-time.After(time.Until(pc.at.Add(pc.stall))):
				case <-pc.p.closed:
					return
				}
			case f == faultFreeze && pc.strike():
				<-pc.p.closed
				return
			case f == faultGarbage && up == pc.junkUp && !junked && pc.strike():
				junked = true
				for i := range junk {
					junk[i] = byte(rand.Uint32())
				}
				if _, err := dst.Write(junk); err != nil {
					return
				}
			}
			if !pc.write(dst, buf[:n]) {
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				dst.CloseWrite()
			} else {
				pc.cut() // pass a reset on
			}
			return
		}
	}
}

// write forwards b, throttled on a slow path.
func (pc *proxyConn) write(dst *net.TCPConn, b []byte) bool {
	if pc.p.fault != faultSlow {
		_, err := dst.Write(b)
		return err == nil
	}
	for len(b) > 0 {
		n := min(len(b), 1024)
		if _, err := dst.Write(b[:n]); err != nil {
			return false
		}
		b = b[n:]
		select {
		case <-time.After(time.Duration(n) * time.Second / time.Duration(pc.rate)):
		case <-pc.p.closed:
			return false
		}
	}
	return true
}

// end closes both connections once both directions are done.
func (pc *proxyConn) end() {
	if pc.ended.Add(1) < 2 {
		return
	}
	pc.c.Close()
	pc.s.Close()
	pc.p.mu.Lock()
	delete(pc.p.open, pc.c)
	delete(pc.p.open, pc.s)
	pc.p.mu.Unlock()
}

// soakRawListener returns a link dialed over TCP to a raw peer that
// completes the handshake and then runs peer on its end.
func soakRawListener(t *testing.T, cfg *Config, peer func(net.Conn)) *NodeLink {
	t.Helper()
	a, b := socketPair(t, "tcp", "127.0.0.1:0")
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := handshake.Accept(ctx, b, proto.EncodingN); err != nil {
			return
		}
		peer(b)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := NewLink(ctx, a, Dialer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); <-done })
	return l
}

// Found by the soak: Shutdown shuts down the write side, then waits for the
// peer's close; a keepalive Ping queued meanwhile is written to the shut
// socket, fails with EPIPE and takes the link down, so Shutdown reports
// "broken pipe" although everything was written and the peer closed
// cleanly.
func TestSoakShutdownKeepAlive(t *testing.T) {
	leakCheck(t)
	cfg := DefaultConfig()
	cfg.KeepAlive = 20 * time.Millisecond
	cfg.KeepAliveTimeout = 2 * time.Second
	l := soakRawListener(t, cfg, func(nc net.Conn) {
		io.Copy(io.Discard, nc) // everything, up to our EOF
		time.Sleep(300 * time.Millisecond)
	})
	if err := l.Send1(&proto.NotifyReady{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := l.Err(); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("after Shutdown: %v, want ErrLinkClosed", err)
	}
}

// A peer whose process is frozen (its kernel still acknowledges what we
// send, but it never reads nor answers) must be declared dead by keepalive.
func TestSoakKeepAliveFrozenPeer(t *testing.T) {
	leakCheck(t)
	cfg := DefaultConfig()
	cfg.KeepAlive = 50 * time.Millisecond
	cfg.KeepAliveTimeout = 300 * time.Millisecond
	stop := make(chan struct{})
	l := soakRawListener(t, cfg, func(net.Conn) { <-stop })
	defer close(stop)
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("link to a frozen peer still up after 5 s; stats %+v", l.Stats())
	}
	var le *LinkError
	if !errors.As(l.Err(), &le) || le.Op != "keepalive" {
		t.Fatalf("err = %v, want a keepalive LinkError", l.Err())
	}
}

// Found by the soak: a Send racing with the link's failure (the peer reset
// the connection, and the reader took the link down and closed the socket)
// can get the raw "use of closed network connection" of its own write on
// the socket the link closed, an error that matches neither ErrLinkDown nor
// ErrLinkClosed. The Send whose write fails first gets that I/O error (as
// Conn.Send documents); a write that fails because the link already closed
// the socket must report the link's failure.
func TestSoakSendAfterReset(t *testing.T) {
	leakCheck(t)
	deadline := time.Now().Add(2 * time.Second)
	for iter := 0; time.Now().Before(deadline); iter++ {
		a, b := socketPair(t, "tcp", "127.0.0.1:0")
		done := make(chan struct{})
		go func() {
			defer close(done)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := handshake.Accept(ctx, b, proto.EncodingN); err != nil {
				b.Close()
				return
			}
			time.Sleep(time.Duration(iter%5) * time.Millisecond)
			b.(*net.TCPConn).SetLinger(0)
			b.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l, err := NewLink(ctx, a, Dialer, nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var bad []error
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := &proto.InvalidateObjects{OIDList: bigOIDList}
				for {
					err := l.Send1(msg)
					if err == nil {
						continue
					}
					if errors.Is(err, net.ErrClosed) && !errors.Is(err, ErrLinkDown) && !errors.Is(err, ErrLinkClosed) {
						mu.Lock()
						bad = append(bad, err)
						mu.Unlock()
					}
					return
				}
			}()
		}
		wg.Wait()
		<-done
		l.Close()
		if len(bad) > 0 {
			t.Fatalf("iteration %d: Send1 on a link taken down by a reset got %v (link: %v)", iter, bad[0], l.Err())
		}
	}
}
