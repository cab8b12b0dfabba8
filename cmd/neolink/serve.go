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
oid & 0xffffffff bytes, data[i] = i % 251, with its SHA-1; any other request
gets PROTOCOL_ERROR "unexpected packet <Name>". Peers may use full mode (one
conn, many requests) or light mode (one id per request).

The first line on stdout is "listening on ADDR". Links coming and going are
logged on stderr. SIGINT or SIGTERM stops listening, lets every link finish
what it is doing (5 s at most) and exits with status 0.`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			o := new(serveOpts)
			fs.StringVar(&o.listen, "listen", "127.0.0.1:24680", "`ADDR` to listen on (port 0 picks a free port)")
			fs.StringVar(&o.encoding, "encoding", "auto", "wire `ENCODING` to accept: auto (detect each peer's), N or M")
			fs.StringVar(&o.cluster, "cluster", "neo", "cluster `NAME` that peers must identify with")
			fs.StringVar(&o.abortOID, "abort-oid", "", "close the whole link, without answering, on AskObject of this `HEX` oid (test hook)")
			fs.IntVar(&o.idleConns, "idle-conns", 1024, "keep at most `N` idle peer conns per link waiting for another request; the least recently used beyond that are closed")
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
	listen, encoding, cluster, abortOID string
	idleConns                           int
	tls                                 tlsFlags
}

// shutdownTimeout bounds the graceful shutdown of each link.
const shutdownTimeout = 5 * time.Second

// run serves until SIGINT or SIGTERM.
func (o *serveOpts) run() error {
	enc, err := parseEncoding(o.encoding, true)
	if err != nil {
		return err
	}
	if o.idleConns < 1 {
		return usagef("-idle-conns must be at least 1")
	}
	s := &server{
		cluster:   o.cluster,
		idleConns: o.idleConns,
		log:       log.New(os.Stderr, "neolink serve: ", log.LstdFlags),
		links:     make(map[*neonet.NodeLink]struct{}),
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
	if cfg.TLS, err = o.tls.config(); err != nil {
		return err
	}
	cfg.OnHandshakeError = func(remote net.Addr, err error) {
		s.log.Printf("handshake with %v failed: %v", remote, err)
	}
	ll, err := neonet.ListenLink("tcp", o.listen, cfg)
	if err != nil {
		return err
	}
	sig, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	fmt.Printf("listening on %s\n", ll.Addr())

	var cancel context.CancelFunc
	s.ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
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
	return err
}

// server is the state of serve shared by all links.
type server struct {
	cluster   string
	abortOID  uint64
	abortSet  bool
	idleConns int
	log       *log.Logger
	ctx       context.Context // ends at shutdown: idle conns then close
	objects   objectStore
	ids       [4]atomic.Uint32 // the last node id number given, by node type

	mu    sync.Mutex
	links map[*neonet.NodeLink]struct{}
	wg    sync.WaitGroup // serveLink goroutines
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
		s.mu.Lock()
		s.links[link] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveLink(link)
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
				s.log.Printf("link from %v did not finish within %v: closed", l.RemoteAddr(), shutdownTimeout)
			}
		})
	}
	wg.Wait()
}

// serveLink accepts the peer's conns and serves each in its own goroutine
// until the link ends.
func (s *server) serveLink(link *neonet.NodeLink) {
	defer s.wg.Done()
	start := time.Now()
	s.log.Printf("link from %v up (encoding %v)", link.RemoteAddr(), link.Encoding())
	ls := &linkState{link: link, max: s.idleConns}
	var conns sync.WaitGroup
	var err error
	for {
		var c *neonet.Conn
		if c, err = link.Accept(); err != nil {
			break
		}
		conns.Go(func() { s.serveConn(ls, c) })
	}
	if errors.Is(err, neonet.ErrLinkNoListen) {
		<-link.Done() // Shutdown is closing the link once its conns are done
	}
	why := s.why(ls, link.Err())
	link.Close()
	conns.Wait()
	st := link.Stats()
	s.log.Printf("link from %v down after %v: %s (%d packets in, %d out)",
		link.RemoteAddr(), time.Since(start).Round(time.Millisecond), why, st.PacketsIn, st.PacketsOut)
	s.mu.Lock()
	delete(s.links, link)
	s.mu.Unlock()
}

// why describes how a link ended with err, its Err before we closed it.
func (s *server) why(ls *linkState, err error) string {
	switch {
	case ls.aborted.Load():
		return fmt.Sprintf("aborted on AskObject of oid %x (-abort-oid)", s.abortOID)
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
	ctx, cancel := context.WithCancel(s.ctx)
	ic := &idleConn{cancel: cancel}
	defer func() {
		ls.setBusy(ic)
		cancel()
		c.Close()
	}()
	var ans proto.AnswerObject // reused: Send encodes at once
	for {
		msg, err := c.RecvContext(ctx)
		ls.setBusy(ic)
		var reply proto.Msg
		var ce *neonet.ConnError
		switch {
		case err == nil:
			reply = s.answer(ls, msg, &ans)
		case errors.As(err, &ce) && ce.Op == "decode":
			reply = proto.ProtocolError("malformed packet: " + ce.Err.Error())
		default:
			return // link down or closed, or conn closed for idleness or shutdown
		}
		// Idle from now on: before the reply goes out, so that the idle
		// list is in the order the peer saw the replies.
		ls.setIdle(ic)
		if reply != nil && !send(c, reply) {
			return
		}
	}
}

// send sends reply on c; a reply too big for a packet is replaced by a
// PROTOCOL_ERROR. It reports whether c is still usable.
func send(c *neonet.Conn, reply proto.Msg) bool {
	err := c.Send(reply)
	if errors.Is(err, proto.ErrPacketTooBig) {
		var ce *neonet.ConnError
		if errors.As(err, &ce) {
			err = ce.Err // without the link and conn id, which the peer knows
		}
		err = c.Send(proto.ProtocolError("cannot answer: " + err.Error()))
	}
	return err == nil
}

// pong is the answer to every Ping; it has no fields, so sharing it is safe.
var pong proto.Pong

// answer returns the reply to msg, or nil for none. ans is the conn's
// reusable AnswerObject.
func (s *server) answer(ls *linkState, msg proto.Msg, ans *proto.AnswerObject) proto.Msg {
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
		data, sum, err := s.objects.get(objectSize(uint64(m.OID)))
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
type linkState struct {
	link    *neonet.NodeLink
	max     int
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
		evict.cancel()
	}
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
