package neonet

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neolink/neolink/proto"
)

// Receiving: a reader baton, and a link that always reads.
//
// The socket is read by whoever holds the reader baton (rxState.reader).
// A goroutine that needs a packet (a Conn's receiver or the acceptor) first
// looks at its queue; if nothing is there and the baton is free, it takes
// the baton and reads the socket itself. Each packet it reads is routed: a
// packet for itself is returned straight from the read buffer, without a
// copy or a goroutine switch; a packet for another Conn is copied to that
// Conn's queue and its receiver, if parked, is woken. When the holder has
// its own packet it routes whatever else is already buffered and releases
// the baton: to a parked Conn receiver if there is one, else it leaves the
// baton free for a short reservation window (reserveWindow).
//
// The reservation is what keeps servers on the fast path: a handler that
// answered a request and calls Expect again finds the baton free and reads
// its next request itself, where handing the baton to the (parked) acceptor
// would make every request cost a goroutine switch.
//
// When the baton stays free for the whole window, the link reads on its
// own: the parked acceptor gets the baton, or else a background reader
// goroutine takes it. So the socket is drained whether or not anyone waits,
// within about a millisecond: pipelined requests and answers never
// deadlock on full TCP windows, and a peer's FIN or RST takes the link down
// at once. The background reader (and the acceptor, when it reads for
// others) gives the baton up as soon as it has woken a Conn receiver and
// the read buffer is empty, so that the receiver's next call reads directly
// again.
//
// Invariants (all under NodeLink.mu):
//   - At most one goroutine holds the baton: rx.reader is its waiter. Only
//     the holder touches rx.rd and the buffer its packets alias.
//   - The baton is released only by its holder (handOffLocked), to a parked
//     Conn receiver if any; otherwise the reservation timer is pending (it
//     is armed then if it was not), so a free baton is always picked up
//     within two reserveWindows.
//   - A waiter is on rx.parked iff it is blocked in park (or about to be).
//     unparkLocked removes it and sends the one token it will consume.
//   - Nothing blocks while holding NodeLink.mu, and the reader never blocks
//     on anything but the socket: routing only queues (bounded) or queues a
//     control packet on the sender's non-blocking control path.
type rxState struct {
	rd *proto.PacketReader // the baton holder's; see the invariants

	reader      *waiter // holder of the baton, nil if free
	interrupted bool    // a past read deadline is set to interrupt the reader
	parked      waiterList
	bg          waiter      // the link's own background reader
	reserve     *time.Timer // fires when the baton may have stayed free for reserveWindow
	armed       bool        // reserve is pending
	releases    uint64      // baton releases so far
	armedAt     uint64      // releases when reserve was armed
	wokeConn    bool        // routing woke a Conn receiver or the acceptor since the holder took the baton
	draining    bool        // Shutdown: discard what arrives, reply nothing

	queued      int       // charge of all queued packets (see rxBuf.charge)
	room        sync.Cond // L is NodeLink.mu: the reader waits here for queue space
	roomWaiters int
	unsolicited []unsolicited
	cbRunning   bool // a goroutine runs OnUnsolicitedError callbacks

	lastRead  atomic.Int64 // unix nanoseconds of the last byte read; not under mu
	bytesRead atomic.Int64 // bytes read from the socket; not under mu
}

// reserveWindow is how long a released baton stays free for a goroutine
// that just read (typically a handler about to Expect its next request)
// before the link reads on its own. It is well under a round trip of any
// real network and well above the scheduling delay of a handler that
// answers at once.
const reserveWindow = 300 * time.Microsecond

// lendMin is the packet size from which the reader reads a packet into a
// buffer of its own and lends it (proto.PacketReader.SetLendThreshold): a
// large packet is then queued without a copy, and Recv decodes its byte
// fields in place.
const lendMin = 64 << 10

type unsolicited struct {
	id   uint32
	args []byte
}

type waiterKind uint8

const (
	waitConn       waiterKind = iota // a Conn's receiver
	waitAccept                       // the acceptor (Accept or Recv1)
	waitBackground                   // the link's background reader
)

// waiter is a goroutine blocked on the link.
type waiter struct {
	// wake carries at most one token. Invariant: a token is sent only by
	// unparkLocked, under NodeLink.mu, when parked is true, which it sets
	// false; a parked goroutine consumes exactly one. So the send never
	// blocks.
	wake   chan struct{}
	parked bool
	kind   waiterKind
	cancel bool   // the current call's context is done
	seq    uint32 // current call, so a late context callback is ignored
	light  bool   // acceptor: Recv1 rather than Accept
	// active: a receiving call (Recv..., Accept, Recv1) is in progress, so
	// what is queued for it is being taken: it decides whether a Conn keeps
	// up when a receive bound is reached. Set when the call starts, cleared
	// when it returns (with the baton's release if it read its own packet).
	active bool
	conn   *Conn // the receiver's Conn; nil for other kinds
	prev   *waiter
	next   *waiter
}

// parkLocked blocks until unparked. Called with l.mu held; returns with it held.
func (w *waiter) parkLocked(l *NodeLink) {
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
	}
	w.parked = true
	l.rx.parked.push(w)
	l.mu.Unlock()
	<-w.wake
	l.mu.Lock()
}

func (w *waiter) unparkLocked(l *NodeLink) {
	if !w.parked {
		return
	}
	w.parked = false
	l.rx.parked.remove(w)
	w.wake <- struct{}{}
}

// waiterList is an intrusive FIFO of parked waiters.
type waiterList struct{ head, tail *waiter }

func (q *waiterList) first() *waiter { return q.head }

func (q *waiterList) push(w *waiter) {
	w.prev, w.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
}

func (q *waiterList) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next = nil, nil
}

func (l *NodeLink) initRx() {
	l.rx.bg.kind = waitBackground
	l.rx.room.L = &l.mu
	l.acc.w.kind = waitAccept
	l.rx.rd = proto.NewPacketReader(linkReader{l}, l.enc, l.cfg.MaxPacketSize, nil)
	l.rx.rd.SetLendThreshold(lendMin)
	l.rx.lastRead.Store(time.Now().UnixNano())
	// Nobody reads yet: the timer starts the link's own reading unless a
	// caller takes the baton first. (Under mu: the timer may fire at once.)
	l.mu.Lock()
	l.rx.armed = true
	l.rx.reserve = time.AfterFunc(reserveWindow, l.reserveExpired)
	l.mu.Unlock()
}

// linkReader is the link's socket as the packet reader sees it: it records
// when bytes last arrived (for keepalive) and how many (for PacketTimeout),
// each only when that check is on.
type linkReader struct{ l *NodeLink }

func (r linkReader) Read(b []byte) (int, error) {
	n, err := r.l.nc.Read(b)
	if n > 0 {
		if r.l.cfg.PacketTimeout > 0 {
			r.l.rx.bytesRead.Add(int64(n))
		}
		if r.l.cfg.KeepAlive > 0 {
			r.l.rx.lastRead.Store(time.Now().UnixNano())
		}
	}
	return n, err
}

// handOffLocked releases the baton, to the longest-parked Conn receiver if
// any (its packet is likely due). Otherwise the baton stays free for
// reserveWindow, then the link reads on its own (reserveExpired).
func (l *NodeLink) handOffLocked() {
	rx := &l.rx
	if rx.reader != nil {
		rx.reader.active = false // the holder's call is ending
	}
	rx.reader = nil
	rx.wokeConn = false
	if l.downErr != nil || l.closed {
		return
	}
	for w := rx.parked.first(); w != nil; w = w.next {
		if w.kind == waitConn {
			rx.reader = w
			w.unparkLocked(l)
			return
		}
	}
	// Arming is lazy: resetting a timer on every release wakes the
	// runtime's netpoller each time (the new deadline is earlier than its
	// sleep), which cost ~2 µs per round trip. A pending timer that finds
	// the baton was used meanwhile re-arms instead (reserveExpired).
	rx.releases++
	if !rx.armed {
		rx.armed, rx.armedAt = true, rx.releases
		rx.reserve.Reset(reserveWindow)
	}
}

// reserveExpired runs on the timer's goroutine when the baton may have been
// free for reserveWindow. If it still is, the parked acceptor gets it, or
// else this goroutine becomes the background reader.
func (l *NodeLink) reserveExpired() {
	l.mu.Lock()
	rx := &l.rx
	rx.armed = false
	if rx.reader != nil || l.closed || l.downErr != nil {
		// The holder re-arms when it releases the baton.
		l.mu.Unlock()
		return
	}
	if rx.releases != rx.armedAt {
		// Released again since armed: it may have been free only briefly.
		rx.armed, rx.armedAt = true, rx.releases
		rx.reserve.Reset(reserveWindow)
		l.mu.Unlock()
		return
	}
	if aw := &l.acc.w; aw.parked {
		rx.reader = aw
		aw.unparkLocked(l)
		l.mu.Unlock()
		return
	}
	rx.reader = &rx.bg
	// Close sets l.closed under mu before it waits on l.bg, so this Add
	// (made under mu with closed false) happens before that Wait.
	l.bg.Add(1)
	l.mu.Unlock()
	defer l.bg.Done()
	l.backgroundRead()
}

// backgroundRead reads and routes for everyone while it holds the baton.
func (l *NodeLink) backgroundRead() {
	w := &l.rx.bg
	for {
		_, _, err := l.readFor(w)
		if err == errYield {
			return
		}
		l.mu.Lock()
		stop := l.rx.reader != w
		l.mu.Unlock()
		if stop {
			return
		}
	}
}

// delivery is a packet handed to a receiver: either a queued copy (buf) or,
// when direct, the reader's own buffer while the receiver holds the baton.
// A large packet lives in a lent buffer (lent) instead, which the receiver
// owns: it recycles it once nothing refers to it (see Conn.recv).
type delivery struct {
	code   uint16
	args   []byte
	buf    *rxBuf
	lent   []byte
	direct bool
}

// release frees the packet, except its lent buffer; a direct delivery
// releases the baton.
func (l *NodeLink) release(d *delivery) {
	if d.direct {
		l.releaseBaton()
	} else if d.buf != nil {
		d.buf.free()
	}
}

// queued makes a delivery of a packet popped from a queue.
func queued(b *rxBuf) delivery {
	if b.lent != nil {
		code, args := b.code, b.args
		return delivery{code: code, args: args, lent: b.takeLent()}
	}
	return delivery{code: b.code, args: b.args, buf: b}
}

var (
	// errRetry tells a waiter to re-check its state after reading stopped.
	errRetry = errors.New("neonet: retry")
	// errYield tells a reader that it handed the baton on to serve others.
	errYield = errors.New("neonet: yield")
)

// recv returns the next packet for c, reading the socket if no one else is.
func (l *NodeLink) recv(c *Conn) (delivery, error) {
	w := &c.w
	l.mu.Lock()
	w.active = true
	for {
		if l.closed {
			// Close discards what was queued: every later call reports it.
			w.active = false
			l.mu.Unlock()
			return delivery{}, ErrLinkClosed
		}
		if b := c.q.pop(); b != nil {
			l.dequeuedLocked(b.charge)
			w.active = false
			holder := l.rx.reader == w
			l.mu.Unlock()
			if holder {
				// Handed the baton along with a queued packet: route the
				// rest and pass the baton on, as after a direct packet.
				l.releaseBaton()
			}
			return queued(b), nil
		}
		read, err := l.stepLocked(w, c.recvErrLocked())
		if err != nil {
			return delivery{}, err
		}
		if read {
			p, _, err := l.readFor(w)
			if err == nil {
				// w.active is cleared when the baton is released.
				return delivery{code: p.Code, args: p.Args, lent: p.Lent, direct: true}, nil
			}
			l.mu.Lock()
		}
	}
}

// stepLocked is what a waiter does when nothing is ready for it, given the
// error that would end its wait (nil if none): end it, releasing the baton
// if held; take the baton if it is free (read is true, mu is released); or
// park until woken (mu is held again on return).
func (l *NodeLink) stepLocked(w *waiter, err error) (read bool, _ error) {
	if err == nil && w.cancel {
		err = context.Canceled
	}
	rx := &l.rx
	if err != nil {
		w.active = false
		if rx.reader == w {
			l.handOffLocked()
		}
		l.mu.Unlock()
		return false, err
	}
	if rx.reader == nil {
		rx.reader = w
		rx.wokeConn = false
	}
	if rx.reader == w {
		l.mu.Unlock()
		return true, nil
	}
	w.parkLocked(l)
	return false, nil
}

// readFor reads packets while w holds the baton, until one is w's own: a
// packet for w's Conn, or a new peer Conn for the acceptor. It returns with
// the baton still held. On errRetry the baton may have been released (on
// interruption it is handed off; on a link failure everyone is woken) and
// the caller must re-check its state. The acceptor and the background
// reader return errYield after handing the baton to a Conn receiver they
// woke.
func (l *NodeLink) readFor(w *waiter) (proto.Packet, *Conn, error) {
	for {
		p, err := l.nextPacket(w)
		if err != nil {
			if isTimeout(err) {
				if l.interruptedStop(w) {
					return p, nil, errRetry
				}
				continue
			}
			l.readerFailed(readError(err))
			return p, nil, errRetry
		}
		own, c, yield, err := l.route(&p, w)
		switch {
		case err != nil:
			l.readerFailed(err)
			return p, nil, errRetry
		case own:
			return p, c, nil
		case yield:
			l.releaseBaton()
			return p, nil, errYield
		}
	}
}

// nextPacket reads the next packet as the baton holder w.
func (l *NodeLink) nextPacket(w *waiter) (proto.Packet, error) {
	if w.kind == waitBackground && l.tx.raw != nil && l.rx.rd.Release() {
		// Nothing buffered and maybe a long wait ahead: an idle link holds
		// no read buffer (it is pooled), only this goroutine.
		if err := l.tx.raw.Read(readable); err != nil {
			return proto.Packet{}, err
		}
	}
	return l.rx.rd.Next()
}

// route routes one packet read by w (nil: by a holder releasing the baton)
// and runs what routing leaves to do outside the lock. It reports whether
// the packet is w's own (see routeLocked), whether w, a reader for others,
// should give the baton up, and an error that takes the link down. A lent
// buffer that routing did not take over is recycled, unless the packet is
// w's own.
func (l *NodeLink) route(p *proto.Packet, w *waiter) (own bool, c *Conn, yield bool, err error) {
	l.mu.Lock()
	own, c, err = l.routeLocked(p, w)
	yield = !own && w != nil && w.kind != waitConn && l.rx.wokeConn
	cb := l.startCallbacksLocked()
	l.mu.Unlock()
	if !own && p.Lent != nil {
		proto.Recycle(p.Lent)
		p.Lent = nil
	}
	if cb {
		go l.runCallbacks()
	}
	return own, c, yield, err
}

// readerFailed takes the link down with err, found by the baton holder,
// which gives the baton up.
func (l *NodeLink) readerFailed(err error) {
	l.mu.Lock()
	l.rx.reader = nil
	l.mu.Unlock()
	l.fail(err)
}

// interruptedStop handles a read that returned because of a deadline: the
// interruption is cleared, and the reader stops (handing the baton off) if
// its wait is over. It reports whether the reader stopped.
func (l *NodeLink) interruptedStop(w *waiter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	rx := &l.rx
	if rx.interrupted {
		rx.interrupted = false
		l.nc.SetReadDeadline(noDeadline)
	}
	stop := w.cancel || l.closed || l.downErr != nil || rx.reader != w ||
		(w.kind == waitConn && w.conn.rxClosed) ||
		(w.kind == waitAccept && l.acc.closed)
	if stop && rx.reader == w {
		l.handOffLocked()
	}
	return stop
}

// readError names what a failed read means for the link.
func readError(err error) error {
	if errors.Is(err, io.EOF) {
		return errPeerClosed
	}
	return err
}

var errPeerClosed = errors.New("neonet: peer closed the link")

// releaseBaton routes what is left in the read buffer, then hands the baton
// on. The caller holds the baton and is done with its direct packet.
func (l *NodeLink) releaseBaton() {
	for {
		p, ok, err := l.rx.rd.NextBuffered()
		if err == nil && ok {
			_, _, _, err = l.route(&p, nil)
		}
		if err != nil {
			l.readerFailed(err)
			return
		}
		if !ok {
			break
		}
	}
	l.mu.Lock()
	l.handOffLocked()
	l.mu.Unlock()
}

// routeLocked delivers one packet. It reports own=true when the packet is
// for w itself (w's Conn, or a new Conn for the acceptor w, returned as c);
// the caller then still holds it in the read buffer. A non-nil error takes
// the link down.
func (l *NodeLink) routeLocked(p *proto.Packet, w *waiter) (own bool, c *Conn, _ error) {
	l.stats.PacketsIn++
	l.stats.BytesIn += uint64(p.Size)
	if l.rx.draining {
		l.stats.Discarded++
		return false, nil, nil
	}
	if l.ours(*p) {
		c = l.local[p.ID]
		if c == nil || c.rxClosed {
			l.unroutableLocked(*p, c)
			return false, nil, nil
		}
		return l.deliverLocked(c, p, w), nil, nil
	}
	if c = l.peer[p.ID]; c != nil {
		if c.rxClosed {
			l.unroutableLocked(*p, c)
			return false, nil, nil
		}
		return l.deliverLocked(c, p, w), nil, nil
	}
	if l.routing == RouteParity && l.peerIDs.seen(p.ID) {
		l.unroutableLocked(*p, nil)
		return false, nil, nil
	}
	if p.Code == proto.AnswerBit {
		// An Error never opens a connection.
		l.unroutableLocked(*p, nil)
		return false, nil, nil
	}
	if l.routing == RouteParity {
		l.peerIDs.mark(p.ID)
	}
	if p.Code == codePing && l.cfg.AnswerPing {
		if !l.tx.control(p.ID, &proto.Pong{}, false) {
			l.stats.DroppedReplies++
		}
		return false, nil, nil
	}
	return l.openPeerLocked(p, w)
}

// openPeerLocked handles the first packet on a new peer id: a new Conn for
// the acceptor, or a refusal.
func (l *NodeLink) openPeerLocked(p *proto.Packet, w *waiter) (own bool, c *Conn, _ error) {
	acceptor := w != nil && w.kind == waitAccept
	if l.acc.closed || (!acceptor && l.acc.q.len() >= l.cfg.AcceptBacklog) {
		if _, isRequest := proto.AnswerOf(p.Code); !isRequest && !l.acc.closed {
			// A notification cannot be refused with an answer; losing it
			// silently would leave the application out of step with the
			// peer (a stale cache, for an invalidation).
			return false, nil, ErrAcceptOverflow
		}
		l.stats.RepliedRefused++
		l.replyLocked(p.ID, false, "connection refused")
		return false, nil, nil
	}
	c = l.connLocked(p.ID, false)
	l.peer[p.ID] = c
	if acceptor && w.light {
		c.rxClosed = true // Recv1: one request per id; more get "connection closed"
		return true, c, nil
	}
	if !l.enqueueLocked(c, p) {
		return false, nil, nil
	}
	if acceptor {
		return true, c, nil
	}
	c.inAcceptQ = true
	l.acc.q.push(c)
	if l.acc.w.parked {
		// The acceptor will want the baton for its next call: a reader
		// that is not the acceptor gives it up (see readFor).
		l.rx.wokeConn = true
		l.acc.w.unparkLocked(l)
	}
	return false, nil, nil
}

// ours reports whether p belongs to a connection we opened.
func (l *NodeLink) ours(p proto.Packet) bool {
	if l.routing == RouteParity {
		return p.ID&1 == l.nextID&1
	}
	if proto.IsAnswer(p.Code) {
		return true
	}
	// NEO/py replication streams AddTransaction/AddObject notifications on
	// the id of our AskFetchTransactions/AskFetchObjects, without the answer bit.
	if p.Code == codeAddTransaction || p.Code == codeAddObject {
		return l.local[p.ID] != nil
	}
	return false
}

var (
	codeAddTransaction = (*proto.AddTransaction)(nil).MsgCode()
	codeAddObject      = (*proto.AddObject)(nil).MsgCode()
	codePing           = (*proto.Ping)(nil).MsgCode()
)

// deliverLocked gives p to c: directly if c's receiver is the reader w and
// nothing is queued before it, else into c's queue within its bounds.
func (l *NodeLink) deliverLocked(c *Conn, p *proto.Packet, w *waiter) bool {
	if w == &c.w && c.q.len() == 0 {
		return true
	}
	if !l.enqueueLocked(c, p) {
		return false
	}
	if c.w.parked {
		l.rx.wokeConn = true
		c.w.unparkLocked(l)
	}
	return false
}

// enqueueLocked queues a copy of p for c within the receive bounds. A Conn
// that is not keeping up (nobody is receiving on it) and is over its own
// bound, or holds the most when the link is over its bound, is aborted. If
// everything queued belongs to Conns whose receivers are taking it, the
// reader waits for room instead: those receivers are running, and waiting
// applies TCP flow control to the peer rather than failing a Conn that does
// nothing wrong. It reports whether p was queued.
func (l *NodeLink) enqueueLocked(c *Conn, p *proto.Packet) bool {
	rx := &l.rx
	b := newRxBuf(p) // takes over a lent buffer: b frees it if not queued
	for {
		if c.rxClosed || l.closed || l.downErr != nil {
			b.free()
			return false
		}
		connOver := c.q.len() > 0 && c.q.bytes+b.charge > l.cfg.ConnRecvBuffer
		linkOver := rx.queued > 0 && rx.queued+b.charge > l.cfg.LinkRecvBuffer
		if !connOver && !linkOver {
			break
		}
		if connOver && !l.keepingUpLocked(c) {
			b.free()
			l.overflowLocked(c)
			return false
		}
		if linkOver && !connOver {
			if hog := l.biggestHogLocked(); hog != nil {
				if hog == c {
					b.free()
					l.overflowLocked(c)
					return false
				}
				l.overflowLocked(hog)
				continue
			}
		}
		rx.roomWaiters++
		rx.room.Wait()
		rx.roomWaiters--
	}
	c.q.push(b)
	rx.queued += b.charge
	return true
}

// keepingUpLocked reports whether c's queue is being taken: a receiver is
// in a receiving call on it, or, for a Conn waiting to be accepted, the
// acceptor is.
func (l *NodeLink) keepingUpLocked(c *Conn) bool {
	if c.inAcceptQ {
		return l.acc.w.active
	}
	return c.w.active
}

// biggestHogLocked returns the Conn holding the most queued bytes among
// those not keeping up. It scans every Conn, which is fine: it runs only
// when the link bound is reached.
func (l *NodeLink) biggestHogLocked() *Conn {
	var big *Conn
	for _, tab := range [2]map[uint32]*Conn{l.local, l.peer} {
		for _, c := range tab {
			if c.q.len() > 0 && !l.keepingUpLocked(c) && (big == nil || c.q.bytes > big.q.bytes) {
				big = c
			}
		}
	}
	return big
}

// dequeuedLocked accounts for charge bytes leaving the queues and wakes a
// reader waiting for room.
func (l *NodeLink) dequeuedLocked(charge int) {
	l.rx.queued -= charge
	if l.rx.roomWaiters > 0 {
		l.rx.room.Broadcast()
	}
}

func (l *NodeLink) overflowLocked(c *Conn) {
	l.stats.Overflows++
	l.abortLocked(c, ErrConnOverflow, "receive queue overflow")
}

// abortLocked ends c's receiving with err, drops what was queued for it and
// tells the peer why on c's id.
func (l *NodeLink) abortLocked(c *Conn, err error, reason string) {
	c.rxClosed = true
	if c.rxErr == nil {
		c.rxErr = err
	}
	l.dequeuedLocked(c.q.drain())
	l.replyLocked(c.id, c.local, reason)
	c.toldPeer = true
	c.w.unparkLocked(l)
	if l.rx.reader == &c.w {
		l.interruptLocked()
	}
}

// unroutableLocked handles a packet for no open connection (c is nil) or
// for a Conn that no longer receives: an Error is passed to
// OnUnsolicitedError, a late answer is dropped under answer-bit routing,
// anything else is answered "connection closed".
func (l *NodeLink) unroutableLocked(p proto.Packet, c *Conn) {
	switch {
	case p.Code == proto.AnswerBit:
		l.stats.UnsolicitedErrs++
		if l.cfg.OnUnsolicitedError != nil {
			l.rx.unsolicited = append(l.rx.unsolicited, unsolicited{id: p.ID, args: append([]byte(nil), p.Args...)})
		}
	case proto.IsAnswer(p.Code):
		// A late answer (its Ask ended early, or its Conn was closed)
		// expects no reply: drop it.
		l.stats.DroppedAnswers++
	case c != nil && c.toldPeer:
		// The peer was told once why this Conn stopped receiving; an
		// Error per late packet would only flood it.
		l.stats.DroppedLate++
	default:
		l.stats.RepliedClosed++
		l.replyLocked(p.ID, c != nil && c.local, "connection closed")
		if c != nil {
			c.toldPeer = true
		}
	}
}

// replyLocked sends Error{PROTOCOL_ERROR, reason} on id without blocking.
// ownID says the id is one we allocated: under answer-bit routing the peer
// would route an Error there to its own request with the same id, so it is
// counted instead of sent.
func (l *NodeLink) replyLocked(id uint32, ownID bool, reason string) {
	if ownID && l.routing == RouteAnswerBit {
		l.stats.SuppressedErrors++
		return
	}
	e := proto.Error{Code: proto.CodeProtocolError, Message: reason}
	if !l.tx.control(id, &e, false) {
		l.stats.DroppedReplies++
	}
}

// startCallbacksLocked reports whether a goroutine must be started to run
// OnUnsolicitedError for the Errors that routing collected.
func (l *NodeLink) startCallbacksLocked() bool {
	if len(l.rx.unsolicited) == 0 || l.rx.cbRunning {
		return false
	}
	l.rx.cbRunning = true
	return true
}

// runCallbacks calls OnUnsolicitedError for each collected Error, in order,
// on its own goroutine: the callback may block or call any method of the
// link (Close included) without stalling or deadlocking the reader.
func (l *NodeLink) runCallbacks() {
	for {
		l.mu.Lock()
		todo := l.rx.unsolicited
		l.rx.unsolicited = nil
		if len(todo) == 0 {
			l.rx.cbRunning = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		for _, u := range todo {
			var e proto.Error
			if e.DecodeArgs(u.args) == nil {
				l.cfg.OnUnsolicitedError(l, u.id, &e)
			}
		}
	}
}

// watch arranges for ctx's end to cancel w's current call. It returns the
// function to call when the call ends. Contexts that cannot end cost nothing.
func (l *NodeLink) watch(ctx context.Context, w *waiter) func() {
	if ctx == nil || ctx.Done() == nil {
		return nop
	}
	l.mu.Lock()
	w.seq++
	seq := w.seq
	w.cancel = ctx.Err() != nil
	l.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		if w.seq == seq {
			w.cancel = true
			w.unparkLocked(l)
			if l.rx.reader == w {
				l.interruptLocked()
			}
		}
		l.mu.Unlock()
	})
	return func() {
		stop()
		l.mu.Lock()
		w.seq++
		w.cancel = false
		l.mu.Unlock()
	}
}

func nop() {}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isClosedErr(err error) bool { return errors.Is(err, net.ErrClosed) }

// interruptLocked makes a reader blocked in Read return: a deadline in the
// past is the only portable way to interrupt a net.Conn Read. The reader
// clears it (under mu, so the two cannot race) before reading again.
func (l *NodeLink) interruptLocked() {
	if !l.rx.interrupted {
		l.rx.interrupted = true
		l.nc.SetReadDeadline(aLongTimeAgo)
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// wakeAllLocked wakes every parked waiter and interrupts the reader, so that
// each re-checks the link's state.
func (l *NodeLink) wakeAllLocked() {
	for w := l.rx.parked.first(); w != nil; w = l.rx.parked.first() {
		w.unparkLocked(l)
	}
	if l.rx.reader != nil {
		l.interruptLocked()
	}
	l.rx.room.Broadcast()
}
