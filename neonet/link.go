package neonet

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/proto"
)

// NodeLink is one NEO link: a handshaked net.Conn that carries many logical
// connections (Conn). All methods are safe for concurrent use.
//
// A link always reads its socket: a goroutine waiting for a packet reads it
// itself (the fast path), and when nobody waits the link reads on its own
// and queues what arrives for its Conns and the accept backlog, within the
// bounds of Config. So a peer's traffic never stalls behind an application
// that is busy sending, and a peer that goes away (FIN or RST) takes the
// link down (Done, Err) at once, without a receiver or keepalive.
type NodeLink struct {
	nc      net.Conn
	enc     proto.Encoding
	role    Role
	routing Routing // resolved: RouteParity or RouteAnswerBit
	cfg     Config

	// Lock order: Conn.rxmu BEFORE acceptState.mu BEFORE NodeLink.mu BEFORE
	// txState.ctlMu. txState.mu is never held while taking NodeLink.mu, and
	// nothing blocks on I/O while holding NodeLink.mu.
	acc acceptState // Accept and Recv1 (accept.go)

	mu        sync.Mutex
	rx        rxState          // the read side (rx.go)
	local     map[uint32]*Conn // conns we opened
	peer      map[uint32]*Conn // conns the peer opened
	nextID    uint32
	peerIDs   idWindow
	closed    bool  // Close was called, or Shutdown completed
	downErr   error // *downError: what took the link down
	freeConns []*Conn
	stats     Stats
	idle      chan struct{} // Shutdown: closed once no Conn is open
	idleDone  bool
	ka        keepaliveState // guarded by mu (lifecycle.go)
	pw        packetWatch    // guarded by mu (lifecycle.go)

	tx txState // the write side (tx.go)

	closeOnce sync.Once
	closeErr  error
	doneOnce  sync.Once
	done      chan struct{}  // closed when the link is closed or down
	bg        sync.WaitGroup // reader, flusher and keepalive goroutines
}

// Stats are a link's counters at one moment.
type Stats struct {
	PacketsIn, PacketsOut uint64
	BytesIn, BytesOut     uint64
	OpenConns             int // conns in the link's tables (ours and the peer's)
	AcceptBacklog         int // peer-opened conns waiting for Accept or Recv1
	QueuedBytes           int // memory charged for received packets not yet taken

	// Errors by kind.
	RepliedClosed    uint64 // packets answered "connection closed"
	RepliedRefused   uint64 // new conns answered "connection refused"
	DroppedAnswers   uint64 // late answers for closed conns (answer-bit routing)
	UnsolicitedErrs  uint64 // Error packets whose id matched nothing
	Overflows        uint64 // conns aborted for exceeding a receive bound
	DecodeErrors     uint64 // messages that failed to decode
	DroppedReplies   uint64 // error replies not sent because the control queue was full
	SuppressedErrors uint64 // Errors not sent on our own ids under answer-bit routing
	Discarded        uint64 // packets read and discarded by Shutdown
	DroppedLate      uint64 // packets for a Conn whose peer was already told it stopped receiving
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
	if err := nc.SetReadDeadline(noDeadline); err != nil {
		nc.Close()
		return nil, fmt.Errorf("neonet: %T does not support deadlines, which the link needs to interrupt its reader: %w", nc, err)
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
	l.tx.init(l)
	l.initRx()
	l.startKeepalive()
	l.startPacketWatch()
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

// Err returns nil while the link is up. After a failure it returns an error
// that matches ErrLinkDown and unwraps to the cause (io errors, the peer
// closing the link, ErrAcceptOverflow, ErrWriteTimeout, a keepalive
// timeout...), also after a later Close. After Close or a completed
// Shutdown of a healthy link it returns ErrLinkClosed.
func (l *NodeLink) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.linkErrLocked()
}

// Stats returns the link's counters.
func (l *NodeLink) Stats() Stats {
	l.mu.Lock()
	s := l.stats
	s.OpenConns = len(l.local) + len(l.peer)
	s.AcceptBacklog = l.acc.q.len()
	s.QueuedBytes = l.rx.queued
	l.mu.Unlock()
	s.PacketsOut, s.BytesOut = l.tx.counters()
	return s
}

// NewConn opens a new connection to the peer. Nothing is sent until its
// first Send. It fails with ErrLinkManyConn when every id of our parity is
// in use, and with ErrLinkClosed or ErrLinkDown on a dead link.
func (l *NodeLink) NewConn() (*Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.newLocalLocked()
	if err != nil {
		return nil, &LinkError{Link: l, Op: "newconn", Err: err}
	}
	return c, nil
}

// newLocalLocked allocates the next free id of our parity. Ids wrap at 2³²
// and skip ids still in use, as HTTP/2 streams would if they could wrap.
func (l *NodeLink) newLocalLocked() (*Conn, error) {
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
			c := l.connLocked(id, true)
			l.local[id] = c
			return c, nil
		}
	}
}

// connLocked returns a Conn for id, recycled from the free list when there
// is one (a light Conn is never handed to the application as a *Conn, and a
// Request kept past Close is told apart by the Conn's generation), so that
// the steady state of light requests does not allocate.
func (l *NodeLink) connLocked(id uint32, local bool) *Conn {
	var c *Conn
	if n := len(l.freeConns); n > 0 {
		c = l.freeConns[n-1]
		l.freeConns[n-1] = nil
		l.freeConns = l.freeConns[:n-1]
	} else {
		c = &Conn{link: l}
		c.w.conn, c.w.kind = c, waitConn
	}
	c.id, c.local = id, local
	return c
}

// recycleLocked returns a light Conn to the free list. Its generation
// changes, so a Request kept past Close cannot touch its next use.
func (l *NodeLink) recycleLocked(c *Conn) {
	// A Request's message pointed into held until now (its Close).
	proto.Recycle(c.held)
	c.held = nil
	c.gen++
	c.rxClosed, c.closed, c.rxErr, c.toldPeer = false, false, nil, false
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

// linkErrLocked is the error for operations on a link that is not up: the
// failure if it failed (even if closed since), else ErrLinkClosed.
func (l *NodeLink) linkErrLocked() error {
	if l.downErr != nil {
		return l.downErr
	}
	if l.closed {
		return ErrLinkClosed
	}
	return nil
}

// Close closes the link and its connection: every blocked and later call
// returns ErrLinkClosed (or the link's failure, if it failed first). Data
// queued by Send but not yet written is discarded (use Shutdown to drain).
// It may be called from any goroutine, callbacks included; it waits for the
// link's own goroutines to end. It is idempotent; it returns the error of
// closing the underlying connection, once.
func (l *NodeLink) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.closeAcceptLocked()
		l.wakeAllLocked()
		l.stopKeepaliveLocked()
		l.mu.Unlock()
		l.rx.reserve.Stop()
		l.tx.shutdown(ErrLinkClosed)
		if err := l.nc.Close(); err != nil && !isClosedErr(err) {
			l.closeErr = &LinkError{Link: l, Op: "close", Err: err}
		}
		l.doneOnce.Do(func() { close(l.done) })
		l.bg.Wait()
	})
	return l.closeErr
}

// fail takes the link down with cause, unless it is already closed or down.
// Every waiter wakes; every later call returns the *downError. While
// Shutdown drains, the link ending is expected, not a failure.
func (l *NodeLink) fail(cause error) {
	l.mu.Lock()
	first := !l.closed && l.downErr == nil
	if first {
		if l.rx.draining {
			// Shutdown wrote everything and shut our side: whatever ends
			// the drain (EOF, usually) is the end it waits for.
			l.closed = true
		} else {
			l.downErr = &downError{cause: cause}
		}
		l.wakeAllLocked()
		l.stopKeepaliveLocked()
	}
	err := l.linkErrLocked()
	l.mu.Unlock()
	if !first {
		return
	}
	l.tx.shutdown(err)
	l.nc.Close()
	l.doneOnce.Do(func() { close(l.done) })
}
