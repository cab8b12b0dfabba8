package neonet

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/proto"
)

// NodeLink is one NEO link: a handshaked net.Conn that carries many logical
// connections (Conn). All methods are safe for concurrent use.
//
// The link reads from the network only while some goroutine waits on it (in
// Recv, Accept, Ask, Expect, Ask1, Recv1 or their variants, or a keepalive
// Ping waiting for its Pong): the waiting goroutine reads the socket itself and routes what it reads
// to the others (see rx.go). A link nobody receives on leaves incoming data
// in the kernel, which applies TCP flow control to the peer.
type NodeLink struct {
	nc      net.Conn
	enc     proto.Encoding
	role    Role
	routing Routing // resolved: RouteParity or RouteAnswerBit
	cfg     Config

	// rd belongs to the goroutine holding the reader baton (mu.reader).
	rd *proto.PacketReader

	acceptMu sync.Mutex // serializes Accept and Recv1 callers; held while waiting
	aw       waiter     // the waiting acceptor, guarded by mu while parked

	mu          sync.Mutex
	reader      *waiter // holder of the reader baton, nil if nobody reads
	interrupted bool    // a past read deadline is set to interrupt the reader
	parked      waiterList
	local       map[uint32]*Conn // conns we opened
	peer        map[uint32]*Conn // conns the peer opened
	nextID      uint32
	peerIDs     idWindow
	acceptq     []*Conn
	acceptHead  int
	noAccept    bool  // CloseAccept was called
	closed      bool  // Close was called
	downErr     error // the error that took the link down
	acceptDown  bool  // the acceptor has been given downErr once
	queued      int   // bytes queued in all conns
	freeConns   []*Conn
	unsolicited []unsolicited // Errors for OnUnsolicitedError, run outside mu
	stats       Stats
	lastRecv    time.Time     // for keepalive: when a packet last arrived
	idle        chan struct{} // Shutdown: closed once no Conn is open
	idleDone    bool

	tx txState

	closeOnce sync.Once
	closeErr  error
	doneOnce  sync.Once
	done      chan struct{}  // closed when the link is closed or down
	bg        sync.WaitGroup // background goroutines: flusher, keepalive
}

type unsolicited struct {
	id   uint32
	args []byte
}

// Stats are a link's counters at one moment.
type Stats struct {
	PacketsIn, PacketsOut uint64
	BytesIn, BytesOut     uint64
	OpenConns             int // conns in the link's tables (ours and the peer's)
	AcceptBacklog         int // peer-opened conns waiting for Accept or Recv1
	QueuedBytes           int // received bytes not yet taken by a receiver

	// Errors by kind.
	RepliedClosed   uint64 // packets answered "connection closed"
	RepliedRefused  uint64 // new conns answered "connection refused"
	DroppedAnswers  uint64 // late answers for closed conns (answer-bit routing)
	UnsolicitedErrs uint64 // Error packets whose id matched nothing
	Overflows       uint64 // conns aborted for exceeding their receive bound
	DecodeErrors    uint64 // messages that failed to decode
	DroppedReplies  uint64 // error replies not sent because the send buffer was full
}

// NewLink performs the handshake over nc and returns the link. role decides
// the id parity; cfg may be nil for DefaultConfig. A listener with
// cfg.Encoding == 0 auto-detects the peer's encoding. If cfg.TLS is set, nc
// is first wrapped in TLS. On error nc is closed.
func NewLink(ctx context.Context, nc net.Conn, role Role, cfg *Config) (*NodeLink, error) {
	cfg = orDefault(cfg)
	if err := cfg.Validate(); err != nil {
		nc.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	nc, err := startTLS(ctx, nc, role, cfg)
	if err != nil {
		return nil, err
	}
	enc := cfg.Encoding
	if role == Listener {
		enc, err = handshake.Accept(ctx, nc, enc)
	} else {
		if enc == 0 {
			enc = proto.EncodingN
		}
		err = handshake.Dial(ctx, nc, enc)
	}
	if err != nil {
		return nil, err
	}
	return newLink(nc, enc, role, cfg), nil
}

func newLink(nc net.Conn, enc proto.Encoding, role Role, cfg *Config) *NodeLink {
	l := &NodeLink{
		nc:    nc,
		enc:   enc,
		role:  role,
		cfg:   *cfg,
		local: make(map[uint32]*Conn),
		peer:  make(map[uint32]*Conn),
		done:  make(chan struct{}),
	}
	l.routing = cfg.Routing
	if l.routing == RouteAuto {
		l.routing = RouteParity
		if enc == proto.EncodingM {
			l.routing = RouteAnswerBit
		}
	}
	l.nextID = 1
	if role == Listener {
		l.nextID = 2
	}
	l.rd = proto.NewPacketReader(nc, enc, cfg.MaxPacketSize, nil)
	l.aw.init(nil)
	l.tx.init(l)
	l.lastRecv = time.Now()
	if cfg.KeepAlive > 0 {
		l.bg.Add(1)
		go l.keepalive()
	}
	return l
}

// Encoding returns the link's negotiated wire encoding.
func (l *NodeLink) Encoding() proto.Encoding { return l.enc }

// Routing returns the link's routing rule (never RouteAuto).
func (l *NodeLink) Routing() Routing { return l.routing }

// LocalAddr returns the local network address of the underlying connection.
func (l *NodeLink) LocalAddr() net.Addr { return l.nc.LocalAddr() }

// RemoteAddr returns the remote network address of the underlying connection.
func (l *NodeLink) RemoteAddr() net.Addr { return l.nc.RemoteAddr() }

// Done returns a channel that is closed when the link is closed or goes down.
func (l *NodeLink) Done() <-chan struct{} { return l.done }

// Err returns nil while the link is up, ErrLinkClosed after Close, or the
// error that took it down.
func (l *NodeLink) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrLinkClosed
	}
	return l.downErr
}

// Stats returns the link's counters.
func (l *NodeLink) Stats() Stats {
	l.mu.Lock()
	s := l.stats
	s.OpenConns = len(l.local) + len(l.peer)
	s.AcceptBacklog = len(l.acceptq) - l.acceptHead
	s.QueuedBytes = l.queued
	l.mu.Unlock()
	l.tx.mu.Lock()
	s.PacketsOut, s.BytesOut = l.tx.packets, l.tx.bytes
	l.tx.mu.Unlock()
	return s
}

// NewConn opens a new connection to the peer. Nothing is sent until its
// first Send. It fails with ErrLinkManyConn when every id of our parity is
// in use, and with ErrLinkClosed or ErrLinkDown on a dead link.
func (l *NodeLink) NewConn() (*Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.newLocalLocked(false)
	if err != nil {
		return nil, &LinkError{Link: l, Op: "newconn", Err: err}
	}
	return c, nil
}

// newLocalLocked allocates the next free id of our parity. Ids wrap at 2³²
// and skip ids still in use, as HTTP/2 streams would if they could wrap.
func (l *NodeLink) newLocalLocked(light bool) (*Conn, error) {
	if err := l.linkErrLocked(); err != nil {
		return nil, err
	}
	for tries := 0; ; tries++ {
		if tries >= 1<<31 {
			return nil, ErrLinkManyConn
		}
		id := l.nextID
		l.nextID += 2
		if _, busy := l.local[id]; !busy {
			c := l.connLocked(id, true, light)
			l.local[id] = c
			return c, nil
		}
	}
}

// connLocked returns a Conn for id: recycled from the free list for light
// use (Ask1, Send1, Recv1), new otherwise (a Conn the caller may keep).
func (l *NodeLink) connLocked(id uint32, local, light bool) *Conn {
	var c *Conn
	if n := len(l.freeConns); n > 0 && light {
		c = l.freeConns[n-1]
		l.freeConns[n-1] = nil
		l.freeConns = l.freeConns[:n-1]
	} else {
		c = &Conn{link: l}
		c.w.init(c)
	}
	c.id, c.local = id, local
	return c
}

// recycleLocked returns a light Conn to the free list. Its generation
// changes, so a Request kept past Close cannot touch its next use.
func (l *NodeLink) recycleLocked(c *Conn) {
	c.gen++
	c.rxClosed, c.closed, c.rxErr, c.sawDown = false, false, nil, false
	c.txClosed.Store(false)
	if len(l.freeConns) < 1024 {
		l.freeConns = append(l.freeConns, c)
	}
}

// removeLocked drops c from its table if it is still there.
func (l *NodeLink) removeLocked(c *Conn) {
	tab := l.peer
	if c.local {
		tab = l.local
	}
	if tab[c.id] == c {
		delete(tab, c.id)
		l.checkIdleLocked()
	}
}

// linkErrLocked is the error for operations on a link that is not up.
func (l *NodeLink) linkErrLocked() error {
	if l.closed {
		return ErrLinkClosed
	}
	if l.downErr != nil {
		return ErrLinkDown
	}
	return nil
}

// CloseAccept stops accepting incoming connections: blocked and later Accept
// and Recv1 calls return ErrLinkNoListen, and the peer gets "connection
// refused" for every new connection, including those already queued.
// It is idempotent.
func (l *NodeLink) CloseAccept() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeAcceptLocked()
}

func (l *NodeLink) closeAcceptLocked() {
	if l.noAccept {
		return
	}
	l.noAccept = true
	for c := l.popAcceptLocked(); c != nil; c = l.popAcceptLocked() {
		l.stats.RepliedRefused++
		l.abortLocked(c, ErrLinkNoListen, "connection refused")
		l.removeLocked(c) // never accepted: nobody will close it
	}
	l.aw.unparkLocked(l)
	if l.reader == &l.aw {
		l.interruptLocked()
	}
}

// Close closes the link and its connection: every blocked and later call
// returns ErrLinkClosed. Data queued by Send but not yet written is
// discarded (use Shutdown to drain). It is idempotent; it returns the error
// of closing the underlying connection, once.
func (l *NodeLink) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.closeAcceptLocked()
		l.wakeAllLocked()
		l.mu.Unlock()
		l.tx.shutdown(ErrLinkClosed)
		if err := l.nc.Close(); err != nil && !isClosedErr(err) {
			l.closeErr = &LinkError{Link: l, Op: "close", Err: err}
		}
		l.doneOnce.Do(func() { close(l.done) })
		l.bg.Wait()
	})
	return l.closeErr
}

// fail takes the link down with err, unless it is already closed or down.
// Every waiter wakes; each Conn's next call gets err once, then ErrLinkDown.
func (l *NodeLink) fail(err error) {
	l.mu.Lock()
	first := !l.closed && l.downErr == nil
	if first {
		l.downErr = err
		l.wakeAllLocked()
	}
	l.mu.Unlock()
	if !first {
		return
	}
	l.tx.shutdown(ErrLinkDown)
	l.nc.Close()
	l.doneOnce.Do(func() { close(l.done) })
}

// wakeAllLocked wakes every parked waiter and interrupts the reader, so that
// each re-checks the link's state.
func (l *NodeLink) wakeAllLocked() {
	for w := l.parked.first(); w != nil; w = l.parked.first() {
		w.unparkLocked(l)
	}
	if l.reader != nil {
		l.interruptLocked()
	}
}

// interruptLocked makes a reader blocked in Read return: a deadline in the
// past is the only portable way to interrupt a net.Conn Read. The reader
// clears it (under mu, so the two cannot race) before reading again.
func (l *NodeLink) interruptLocked() {
	if !l.interrupted {
		l.interrupted = true
		l.nc.SetReadDeadline(aLongTimeAgo)
	}
}

var aLongTimeAgo = time.Unix(1, 0)
