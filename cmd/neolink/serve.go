package main

import (
	"container/list"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// serveCommand is "neolink serve": a NEO node that answers like a master.
func serveCommand() *command {
	return &command{
		name:    "serve",
		summary: "run a NEO node that answers like a NEO master (for tests and interop)",
		about: `Serve listens for NEO links and answers requests like a NEO master:
RequestIdentification gets AcceptIdentification (node M1, and the next id of
the peer's node type: C1, C2... for clients) or PROTOCOL_ERROR "invalid
cluster name"; Ping gets Pong; AskObject(oid) gets an object of
oid & 0xffffffff bytes, data[i] = i % 251, uncompressed, with checksum =
SHA-1 of the data as NEO defines it; any other request gets PROTOCOL_ERROR
"unexpected packet <Name>". Peers may use full mode (one conn, many
requests) or light mode (one id per request).

Limits, so that no peer can take the process down:
  - at most 4096 handshakes at once (one more drops the oldest), each with
    its first byte within 2s and done within -handshake-timeout; the log says
    when the slots are full, and how many bytes a failed handshake had
    received
  - per link: -backlog conns waiting to be served (beyond it the peer gets
    "connection refused"), -link-handlers conns served at once, of which
    -idle-conns may wait idle for another request (least recently used
    closed first), 16 MiB of unread data per conn and 64 MiB per link, a
    4 MiB send buffer; a peer that does not read our answers for
    -send-timeout has its link closed, and so does a peer whose packet
    started arriving but is not complete within -packet-timeout
  - per process: -max-handlers conns served at once over all links
  - packets up to 64 MiB: a larger AskObject answer is PROTOCOL_ERROR
  - out of file descriptors (EMFILE): logged, and accepting backs off

The first line on stdout is "listening on ADDR". Links coming and going are
logged on stderr, at most 10 lines a second of each kind; counters (links,
handshake failures, refused conns, dropped packets, overflows...) are
logged every -stats-every and on exit. SIGINT or SIGTERM stops listening,
lets every link finish what it is doing (5 s at most) and exits with
status 0.`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			o := new(serveOpts)
			fs.StringVar(&o.listen, "listen", "127.0.0.1:24680", "`ADDR` to listen on (port 0 picks a free port)")
			fs.StringVar(&o.encoding, "encoding", "auto", "wire `ENCODING` to accept: auto (detect each peer's), N or M")
			fs.StringVar(&o.cluster, "cluster", "neo", "cluster `NAME` that peers must identify with")
			fs.StringVar(&o.abortOID, "abort-oid", "", hiddenFlag+"close the whole link, without answering, on AskObject of this `HEX` oid (test hook)")
			fs.IntVar(&o.idleConns, "idle-conns", 4096, "keep at most `N` idle peer conns per link waiting for another request; the least recently used beyond that are closed")
			fs.IntVar(&o.backlog, "backlog", 4096, "at most `N` peer-opened conns per link wait to be served; beyond, the peer gets \"connection refused\"")
			fs.IntVar(&o.linkHandlers, "link-handlers", 4096, "serve at most `N` conns of one link at once")
			fs.IntVar(&o.maxHandlers, "max-handlers", 16384, "serve at most `N` conns at once over all links")
			durationVar(fs, &o.sendTimeout, "send-timeout", 30*time.Second, "close a link whose peer has not read our answers for `DURATION`")
			durationVar(fs, &o.packetTimeout, "packet-timeout", 2*time.Minute, "close a link whose peer takes longer than `DURATION` to send one packet")
			durationVar(fs, &o.handshakeTimeout, "handshake-timeout", 10*time.Second, "close a connection that has not completed its handshake (TLS included) within `DURATION`")
			durationVar(fs, &o.statsEvery, "stats-every", time.Minute, "log the counters every `DURATION` (0: only on exit)")
			o.tls.register(fs)
			return func(args []string) error {
				if len(args) != 0 {
					return usagef("unexpected argument %q", args[0])
				}
				return o.run()
			}
		},
	}
}

// serveOpts are the flags of serve.
type serveOpts struct {
	listen, encoding, cluster, abortOID           string
	idleConns, backlog, linkHandlers, maxHandlers int
	sendTimeout, statsEvery, handshakeTimeout     time.Duration
	packetTimeout                                 time.Duration
	tls                                           tlsFlags
}

// shutdownTimeout bounds the graceful shutdown of each link.
const shutdownTimeout = 5 * time.Second

// run serves until SIGINT or SIGTERM.
func (o *serveOpts) run() error {
	enc, err := parseEncoding(o.encoding, true)
	if err != nil {
		return err
	}
	switch {
	case o.idleConns < 1:
		return usagef("-idle-conns must be at least 1")
	case o.backlog < 1:
		return usagef("-backlog must be at least 1")
	case o.linkHandlers < 1:
		return usagef("-link-handlers must be at least 1")
	case o.maxHandlers < 1:
		return usagef("-max-handlers must be at least 1")
	case o.sendTimeout <= 0:
		return usagef("-send-timeout must be positive")
	case o.packetTimeout <= 0:
		return usagef("-packet-timeout must be positive")
	case o.statsEvery < 0:
		return usagef("-stats-every must not be negative")
	case o.handshakeTimeout <= 0:
		return usagef("-handshake-timeout must be positive")
	}
	logger := log.New(os.Stderr, "neolink serve: ", log.LstdFlags)
	s := &server{
		cluster:      o.cluster,
		idleConns:    o.idleConns,
		linkHandlers: o.linkHandlers,
		handlers:     make(chan struct{}, o.maxHandlers),
		sendTimeout:  o.sendTimeout,
		log:          logger,
		rlog:         newRateLog(logger, 10),
		links:        make(map[*neonet.NodeLink]*linkState),
		objects:      newObjectStore(),
	}
	if o.abortOID != "" {
		if s.abortOID, err = parseHex(o.abortOID); err != nil {
			return err
		}
		s.abortSet = true
	}
	s.ids[proto.Master].Store(1) // we are M1
	cfg := neonet.DefaultConfig()
	cfg.Encoding = enc
	cfg.AcceptBacklog = o.backlog
	cfg.HandshakeTimeout = o.handshakeTimeout
	cfg.WriteTimeout = o.sendTimeout
	cfg.PacketTimeout = o.packetTimeout
	if cfg.TLS, err = o.tls.config(); err != nil {
		return err
	}
	// The listener is ours, not ListenLink's, so that watchListener can
	// watch it; TCP keepalive as NEO/py and ListenLink set it
	// (docs/reference.md §1.9).
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 60 * time.Second, Interval: 10 * time.Second, Count: 3}}
	nl, err := lc.Listen(context.Background(), "tcp", o.listen)
	if err != nil {
		return err
	}
	s.wl = &watchListener{Listener: nl, log: s.rlog, conns: make(map[string]*countConn)}
	cfg.OnHandshakeError = func(remote net.Addr, err error) {
		n := s.wl.handshakeDone(remote)
		s.rlog.printf("handshake", "handshake with %v failed%s: %v", remote, bytesNote(n), err)
	}
	ll := neonet.NewLinkListener(s.wl, cfg)
	s.ll = ll
	sig, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	fmt.Printf("listening on %s\n", ll.Addr())

	var cancel context.CancelFunc
	s.ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	statsDone := make(chan struct{})
	var statsWG sync.WaitGroup
	if o.statsEvery > 0 {
		statsWG.Go(func() {
			t := time.NewTicker(o.statsEvery)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					s.rlog.flush()
					s.logStats("stats")
				case <-statsDone:
					return
				}
			}
		})
	}
	accepted := make(chan error, 1)
	go func() { accepted <- s.acceptLinks(ll) }()
	select {
	case <-sig.Done():
		stopSignals() // a second signal kills at once
		s.log.Print("shutting down")
		ll.Close()
		err = <-accepted
	case err = <-accepted: // the listener failed
		ll.Close()
	}
	cancel() // idle conns close, so that links become idle
	s.shutdownLinks()
	s.wg.Wait()
	close(statsDone)
	statsWG.Wait()
	s.rlog.flush()
	s.logStats("final stats")
	return err
}

// server is the state of serve shared by all links.
type server struct {
	cluster      string
	abortOID     uint64
	abortSet     bool
	idleConns    int
	linkHandlers int
	handlers     chan struct{} // a slot per conn being served, over all links
	sendTimeout  time.Duration
	log          *log.Logger // for lines that come once
	rlog         *rateLog    // for lines that come per link or per event
	wl           *watchListener
	ll           *neonet.LinkListener
	ctx          context.Context // ends at shutdown: idle conns then close
	objects      *objectStore
	ids          [4]atomic.Uint32 // the last node id number given, by node type

	linksTotal atomic.Uint64
	sendStalls atomic.Uint64 // links closed for not reading our answers
	idleClosed atomic.Uint64 // idle conns closed (LRU beyond -idle-conns or a handler limit)
	limitWaits atomic.Uint64 // times a link waited for a handler slot
	peak       atomic.Int64  // the most conns served at once

	mu    sync.Mutex
	links map[*neonet.NodeLink]*linkState
	ended neonet.Stats   // the summed counters of the links that ended
	wg    sync.WaitGroup // serveLink goroutines
}

// logStats logs the counters, over all links, live and ended.
func (s *server) logStats(what string) {
	s.mu.Lock()
	sum := s.ended
	live := len(s.links)
	for l := range s.links {
		addStats(&sum, l.Stats())
	}
	s.mu.Unlock()
	s.log.Printf("%s: links %d up, %d in all; handshake failures %d; conns refused %d, answered \"closed\" %d, "+
		"aborted for overflow %d; packets dropped %d; links closed for not reading %d; idle conns closed %d; "+
		"handler limit waits %d, most handlers %d; accept EMFILE %d; handshake slots full %d",
		what, live, s.linksTotal.Load(), s.ll.HandshakeFailures(), sum.RepliedRefused, sum.RepliedClosed,
		sum.Overflows, sum.DroppedAnswers+sum.DroppedReplies, s.sendStalls.Load(), s.idleClosed.Load(),
		s.limitWaits.Load(), s.peak.Load(), s.wl.emfile.Load(), s.wl.full.Load())
}

// addStats adds the counters of b to a.
func addStats(a *neonet.Stats, b neonet.Stats) {
	a.PacketsIn += b.PacketsIn
	a.PacketsOut += b.PacketsOut
	a.BytesIn += b.BytesIn
	a.BytesOut += b.BytesOut
	a.RepliedClosed += b.RepliedClosed
	a.RepliedRefused += b.RepliedRefused
	a.DroppedAnswers += b.DroppedAnswers
	a.UnsolicitedErrs += b.UnsolicitedErrs
	a.Overflows += b.Overflows
	a.DecodeErrors += b.DecodeErrors
	a.DroppedReplies += b.DroppedReplies
}

// acceptLinks serves every link ll accepts until ll is closed (nil) or fails.
func (s *server) acceptLinks(ll *neonet.LinkListener) error {
	for {
		link, err := ll.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		s.wl.handshakeDone(link.RemoteAddr())
		s.linksTotal.Add(1)
		ls := &linkState{link: link, max: s.idleConns, srv: s,
			slots: make(chan struct{}, s.linkHandlers), idleCh: make(chan struct{}, 1)}
		ls.ctx, ls.cancel = context.WithCancel(s.ctx)
		s.mu.Lock()
		s.links[link] = ls
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveLink(ls)
	}
}

// shutdownLinks shuts every link down gracefully, in parallel, each within
// shutdownTimeout. New links are no longer accepted when it is called.
func (s *server) shutdownLinks() {
	s.mu.Lock()
	links := make([]*neonet.NodeLink, 0, len(s.links))
	for l := range s.links {
		links = append(links, l)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range links {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := l.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
				s.rlog.printf("shutdown", "link from %v did not finish within %v: closed", l.RemoteAddr(), shutdownTimeout)
			}
		})
	}
	wg.Wait()
}

// serveLink accepts the peer's conns and serves each in its own goroutine
// until the link ends. An accepted conn is served once it has a handler
// slot of the link and of the process; idle conns are closed, least
// recently used first, to make room. While it waits, the peer's further
// new conns wait in the link's backlog, and beyond -backlog are refused.
func (s *server) serveLink(ls *linkState) {
	defer s.wg.Done()
	link := ls.link
	start := time.Now()
	s.rlog.printf("link up", "link from %v up (encoding %v)", link.RemoteAddr(), link.Encoding())
	var conns sync.WaitGroup
	var err error
	for {
		var c *neonet.Conn
		if c, err = link.Accept(); err != nil {
			break
		}
		if err = s.acquire(ls); err != nil {
			c.Close()
			break
		}
		conns.Go(func() {
			defer s.release(ls)
			s.serveConn(ls, c)
		})
	}
	if errors.Is(err, neonet.ErrLinkNoListen) {
		<-link.Done() // Shutdown is closing the link once its conns are done
	}
	ls.cancel() // handlers still working for this link stop
	lerr := link.Err()
	if errors.Is(lerr, neonet.ErrWriteTimeout) {
		s.sendStalls.Add(1)
	}
	why := s.why(ls, lerr)
	link.Close()
	conns.Wait()
	st := link.Stats()
	s.rlog.printf("link down", "link from %v down after %v: %s (%d packets in, %d out)",
		link.RemoteAddr(), time.Since(start).Round(time.Millisecond), why, st.PacketsIn, st.PacketsOut)
	s.mu.Lock()
	delete(s.links, link)
	addStats(&s.ended, st)
	s.mu.Unlock()
}

// acquire takes a handler slot of ls's link and one of the process for a
// conn just accepted, closing idle conns (of the link, then of any link)
// to free them. It fails when the link ends or serve shuts down.
func (s *server) acquire(ls *linkState) error {
	for _, slots := range []chan struct{}{ls.slots, s.handlers} {
		if err := s.acquireSlot(ls, slots); err != nil {
			if slots == s.handlers {
				<-ls.slots
			}
			return err
		}
	}
	n := int64(len(s.handlers))
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	return nil
}

// acquireSlot takes a slot of slots, ls.slots or s.handlers.
func (s *server) acquireSlot(ls *linkState, slots chan struct{}) error {
	select {
	case slots <- struct{}{}:
		return nil
	default:
	}
	s.limitWaits.Add(1)
	global := slots == s.handlers
	var poll <-chan time.Time
	if global {
		// Other links' conns going idle are not signalled: look again now and then.
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		poll = t.C
	}
	logged := false
	for {
		evicted := ls.evictOldest()
		if !evicted && global {
			evicted = s.evictAnyIdle()
		}
		if !evicted && !logged {
			logged = true
			what := "per link (-link-handlers)"
			if global {
				what = "per process (-max-handlers)"
			}
			s.rlog.printf("limit", "link from %v: %d conns served, the limit %s: its new conns wait",
				ls.link.RemoteAddr(), cap(slots), what)
		}
		select {
		case slots <- struct{}{}:
			return nil
		case <-ls.idleCh: // a conn of this link went idle: close it
		case <-poll:
		case <-ls.link.Done():
			return ls.link.Err()
		case <-s.ctx.Done():
			return neonet.ErrLinkClosed
		}
	}
}

// evictAnyIdle closes the least recently used idle conn of the link with
// the most idle conns, and reports whether there was one: a link at the
// process limit takes its slot from links that are not using theirs.
func (s *server) evictAnyIdle() bool {
	s.mu.Lock()
	var most *linkState
	mostIdle := 0
	for _, ls := range s.links {
		ls.mu.Lock()
		n := ls.idle.Len()
		ls.mu.Unlock()
		if n > mostIdle {
			most, mostIdle = ls, n
		}
	}
	s.mu.Unlock()
	return most != nil && most.evictOldest()
}

// release returns the slots acquire took.
func (s *server) release(ls *linkState) {
	<-s.handlers
	<-ls.slots
}

// why describes how a link ended with err, its Err before we closed it.
func (s *server) why(ls *linkState, err error) string {
	switch {
	case ls.aborted.Load():
		return fmt.Sprintf("aborted on AskObject of oid %x (-abort-oid)", s.abortOID)
	case errors.Is(err, neonet.ErrWriteTimeout):
		return fmt.Sprintf("closed: the peer did not read our answers for %v (-send-timeout)", s.sendTimeout)
	case errors.Is(err, neonet.ErrLinkClosed) && s.ctx.Err() != nil:
		return "closed for shutdown"
	case errors.Is(err, io.EOF):
		return "closed by peer"
	case err == nil:
		return "closed"
	}
	return err.Error()
}

// serveConn answers the requests of one conn, in order, until the link
// ends or the conn is closed for being idle (see linkState).
func (s *server) serveConn(ls *linkState, c *neonet.Conn) {
	ctx, cancel := context.WithCancel(ls.ctx)
	ic := &idleConn{cancel: cancel}
	defer func() {
		ls.setBusy(ic)
		cancel()
		c.Close()
	}()
	// A peer that stops reading cannot hold this goroutine: a reply that
	// waits for send-buffer space longer than sendTimeout gives up and
	// closes this conn (SendContext), and the link itself goes down when
	// its writes make no progress for sendTimeout (Config.WriteTimeout).
	var ans proto.AnswerObject // reused: Send encodes at once
	for {
		msg, err := c.RecvContext(ctx)
		ls.setBusy(ic)
		var reply proto.Msg
		var ce *neonet.ConnError
		switch {
		case err == nil:
			reply = s.answer(ctx, ls, msg, &ans)
		case errors.As(err, &ce) && ce.Op == "decode":
			reply = proto.ProtocolError("malformed packet: " + ce.Err.Error())
		default:
			return // link down or closed, or conn closed for idleness or shutdown
		}
		// Idle from now on: before the reply goes out, so that the idle
		// list is in the order the peer saw the replies.
		ls.setIdle(ic)
		if reply == nil {
			continue
		}
		sctx, scancel := context.WithTimeout(ctx, s.sendTimeout)
		ok := send(sctx, c, reply)
		scancel()
		if !ok {
			return
		}
	}
}

// send sends reply on c within ctx; a reply too big for a packet is
// replaced by a PROTOCOL_ERROR. It reports whether c is still usable.
func send(ctx context.Context, c *neonet.Conn, reply proto.Msg) bool {
	err := c.SendContext(ctx, reply)
	if errors.Is(err, proto.ErrPacketTooBig) {
		var ce *neonet.ConnError
		if errors.As(err, &ce) {
			err = ce.Err // without the link and conn id, which the peer knows
		}
		err = c.SendContext(ctx, proto.ProtocolError("cannot answer: "+err.Error()))
	}
	return err == nil
}

// pong is the answer to every Ping; it has no fields, so sharing it is safe.
var pong proto.Pong

// answer returns the reply to msg, or nil for none. ans is the conn's
// reusable AnswerObject.
func (s *server) answer(ctx context.Context, ls *linkState, msg proto.Msg, ans *proto.AnswerObject) proto.Msg {
	switch m := msg.(type) {
	case *proto.RequestIdentification:
		if m.Name != s.cluster {
			return proto.ProtocolError("invalid cluster name")
		}
		return &proto.AcceptIdentification{
			NodeType: proto.Master,
			UUID:     proto.Some(proto.MakeNodeID(proto.Master, 1)),
			YourUUID: proto.Some(s.newNodeID(m.NodeType)),
		}
	case *proto.Ping:
		return &pong
	case *proto.AskObject:
		if s.abortSet && uint64(m.OID) == s.abortOID {
			ls.aborted.Store(true)
			ls.link.Close()
			return nil
		}
		data, sum, err := s.objects.get(ctx, objectSize(uint64(m.OID)))
		if ctx.Err() != nil {
			return nil // the conn or its link is gone: nobody to answer
		}
		if err != nil {
			return proto.ProtocolError("cannot answer: " + err.Error())
		}
		*ans = proto.AnswerObject{OID: m.OID, Serial: 1, Compression: proto.Some(int64(0)), Checksum: sum, Data: data}
		return ans
	}
	switch proto.KindOf(msg.MsgCode()) {
	case proto.KindRequest, proto.KindErrorRequest:
		return proto.ProtocolError("unexpected packet " + proto.Name(msg))
	}
	return nil // notifications, and answers nobody asked for
}

// newNodeID returns the next node id in the namespace of t: C1, C2... for
// clients, S1... for storages, M2... for masters (we are M1).
func (s *server) newNodeID(t proto.NodeType) proto.NodeID {
	n := s.ids[t&3].Add(1)
	return proto.MakeNodeID(t, (n-1)%0xffffff+1)
}

// linkState is the state of serve for one link.
//
// NEO has no frame that closes a conn: a peer in light mode sends one
// request per id and forgets the id, while one in full mode may send more
// on the same id at any time. So every conn stays open, waiting for another
// request, and the least recently used idle conns beyond max are closed
// (their ctx is cancelled: a request that races with it is still answered,
// or refused with "connection closed" if it is left unread).
//
// Lock order: server.mu before linkState.mu.
type linkState struct {
	link    *neonet.NodeLink
	ctx     context.Context // ends when the link goes down: work for it stops
	cancel  context.CancelFunc
	srv     *server
	max     int
	slots   chan struct{} // a slot per conn being served
	idleCh  chan struct{} // signalled when a conn goes idle
	aborted atomic.Bool

	mu   sync.Mutex
	idle list.List // of *idleConn, least recently used first
}

// idleConn is a conn's entry in its linkState's idle list.
type idleConn struct {
	cancel context.CancelFunc
	elem   *list.Element // in linkState.idle while the conn is idle
}

// setIdle puts ic at the end of the idle list and closes the least
// recently used idle conn if there are too many.
func (ls *linkState) setIdle(ic *idleConn) {
	ls.mu.Lock()
	if ic.elem != nil {
		ls.idle.MoveToBack(ic.elem)
	} else {
		ic.elem = ls.idle.PushBack(ic)
	}
	var evict *idleConn
	if ls.idle.Len() > ls.max {
		evict = ls.idle.Remove(ls.idle.Front()).(*idleConn)
		evict.elem = nil
	}
	ls.mu.Unlock()
	if evict != nil {
		ls.srv.idleClosed.Add(1)
		evict.cancel()
	}
	select {
	case ls.idleCh <- struct{}{}:
	default:
	}
}

// evictOldest closes the least recently used idle conn, if there is one,
// and reports whether there was.
func (ls *linkState) evictOldest() bool {
	ls.mu.Lock()
	front := ls.idle.Front()
	var evict *idleConn
	if front != nil {
		evict = ls.idle.Remove(front).(*idleConn)
		evict.elem = nil
	}
	ls.mu.Unlock()
	if evict == nil {
		return false
	}
	ls.srv.idleClosed.Add(1)
	evict.cancel()
	return true
}

// setBusy takes ic off the idle list, if it is there.
func (ls *linkState) setBusy(ic *idleConn) {
	ls.mu.Lock()
	if ic.elem != nil {
		ls.idle.Remove(ic.elem)
		ic.elem = nil
	}
	ls.mu.Unlock()
}
