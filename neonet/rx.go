package neonet

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/neolink/neolink/proto"
)

// Receiving: the reader baton.
//
// A link has no receive goroutine of its own. A goroutine that needs a packet
// (a Conn receiver or an acceptor) first looks at its queue; if nothing is
// there and nobody holds the reader baton (l.reader), it takes the baton and
// reads the socket itself. Each packet it reads is routed: a packet for
// itself is returned straight from the read buffer, without a copy or a
// goroutine switch; a packet for another Conn is copied to that Conn's
// queue and its waiter, if parked, is woken. When the holder has its own
// packet it routes whatever else is already buffered and hands the baton to
// one parked waiter, which then reads for everyone.
//
// This is the leader/follower pattern. For a serial request/reply it costs
// exactly the wakeups of a plain TCP ping-pong: the waiting goroutine is the
// one the netpoller wakes. A dedicated receive goroutine would add a
// goroutine handoff per packet, and with it a wakeup of an idle P
// (golang/go#20168), which measured ~7 µs per round trip on 2 cores.
//
// Invariants (all under l.mu):
//   - At most one goroutine holds the baton: l.reader is its waiter. Only the
//     holder touches l.rd and the buffer its packets alias.
//   - The baton is released only by its holder (handOffLocked), which passes
//     it to a parked waiter if there is one, so nobody waits for a packet
//     while nobody reads.
//   - A waiter is on l.parked iff it is blocked in park (or about to be).
//     unparkLocked removes it and sends the one token it will consume.
//   - Nothing blocks while holding l.mu, and the reader never blocks on
//     anything but the socket: routing only queues (bounded) or replies
//     through the non-blocking control path of the sender.

// waiter is a goroutine blocked on the link: a Conn's receiver or the acceptor.
type waiter struct {
	// wake carries at most one token. Invariant: a token is sent only by
	// unparkLocked, under l.mu, when parked is true, which it sets false; a
	// parked goroutine consumes exactly one. So the send never blocks.
	wake   chan struct{}
	parked bool
	cancel bool   // the current call's context is done
	seq    uint32 // current call, so a late context callback is ignored
	light  bool   // acceptor: Recv1 rather than Accept
	conn   *Conn  // nil for the acceptor
	prev   *waiter
	next   *waiter
}

func (w *waiter) init(c *Conn) { w.conn = c }

// park blocks until unparked. Called with l.mu held; returns with it held.
func (w *waiter) parkLocked(l *NodeLink) {
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
	}
	w.parked = true
	l.parked.push(w)
	l.mu.Unlock()
	<-w.wake
	l.mu.Lock()
}

func (w *waiter) unparkLocked(l *NodeLink) {
	if !w.parked {
		return
	}
	w.parked = false
	l.parked.remove(w)
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

// handOffLocked releases the baton, passing it to the longest-parked Conn
// receiver, or to the acceptor if no receiver waits. A receiver is likely
// to want the next packet (its answer is due); the acceptor waits for an
// event of unknown time, and any reader routes new connections to it.
func (l *NodeLink) handOffLocked() {
	l.reader = nil
	if l.downErr != nil || l.closed {
		return
	}
	next := l.parked.first()
	for w := next; w != nil; w = w.next {
		if w.conn != nil {
			next = w
			break
		}
	}
	if next != nil {
		l.reader = next
		next.unparkLocked(l)
	}
}

// delivery is a packet handed to a receiver: either a queued copy (buf) or,
// when direct, the reader's own buffer while the receiver holds the baton.
type delivery struct {
	code   uint16
	args   []byte
	buf    *rxBuf
	direct bool
}

// release frees the packet; a direct delivery releases the baton.
func (l *NodeLink) release(d *delivery) {
	if d.direct {
		l.releaseBaton()
	} else if d.buf != nil {
		d.buf.free()
	}
}

// errRetry tells a waiter to re-check its state after reading stopped.
var errRetry = errors.New("neonet: retry")

// recv returns the next packet for c, reading the socket if no one else is.
func (l *NodeLink) recv(c *Conn) (delivery, error) {
	w := &c.w
	l.mu.Lock()
	for {
		if b := c.q.pop(); b != nil {
			l.queued -= len(b.args)
			l.mu.Unlock()
			return delivery{code: b.code, args: b.args, buf: b}, nil
		}
		read, err := l.stepLocked(w, c.recvErrLocked())
		if err != nil {
			return delivery{}, err
		}
		if read {
			p, _, err := l.readFor(w)
			if err == nil {
				return delivery{code: p.Code, args: p.Args, direct: true}, nil
			}
			l.mu.Lock()
		}
	}
}

// accept returns the next peer-opened Conn. For Recv1 (light) it also
// returns the first packet, direct from the read buffer when this goroutine
// read it; otherwise that packet is the first in the Conn's queue.
func (l *NodeLink) accept(light bool) (*Conn, delivery, error) {
	w := &l.aw
	l.mu.Lock()
	w.light = light
	for {
		if c := l.popAcceptLocked(); c != nil {
			l.mu.Unlock()
			return c, delivery{}, nil
		}
		read, err := l.stepLocked(w, l.acceptErrLocked())
		if err != nil {
			return nil, delivery{}, err
		}
		if read {
			p, c, err := l.readFor(w)
			if err == nil {
				if light {
					return c, delivery{code: p.Code, args: p.Args, direct: true}, nil
				}
				l.releaseBaton()
				return c, delivery{}, nil
			}
			l.mu.Lock()
		}
	}
}

// stepLocked is what a waiter does when nothing is ready for it, given the
// error that would end its wait (nil if none): end it, releasing the baton
// if held; take the baton if nobody reads (read is true, mu is released);
// or park until woken (mu is held again on return).
func (l *NodeLink) stepLocked(w *waiter, err error) (read bool, _ error) {
	if err == nil && w.cancel {
		err = context.Canceled
	}
	if err != nil {
		if l.reader == w {
			l.handOffLocked()
		}
		l.mu.Unlock()
		return false, err
	}
	if l.reader == nil {
		l.reader = w
	}
	if l.reader == w {
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
// the caller must re-check its state.
func (l *NodeLink) readFor(w *waiter) (proto.Packet, *Conn, error) {
	for {
		p, err := l.rd.Next()
		if err != nil {
			if isTimeout(err) {
				l.mu.Lock()
				if l.interrupted {
					l.interrupted = false
					l.nc.SetReadDeadline(noDeadline)
				}
				stop := w.cancel || l.closed || l.downErr != nil || (w.conn != nil && w.conn.rxClosed) ||
					(w.conn == nil && l.noAccept)
				if stop {
					l.handOffLocked()
				}
				l.mu.Unlock()
				if stop {
					return p, nil, errRetry
				}
				continue
			}
			l.mu.Lock()
			if l.reader == w {
				l.reader = nil
			}
			l.mu.Unlock()
			l.fail(err)
			return p, nil, errRetry
		}
		l.mu.Lock()
		own, c := l.routeLocked(p, w)
		l.mu.Unlock()
		l.runUnsolicited()
		if own {
			return p, c, nil
		}
	}
}

// releaseBaton routes what is left in the read buffer, then hands the baton
// on. The caller holds the baton and is done with its direct packet.
func (l *NodeLink) releaseBaton() {
	for {
		p, ok, err := l.rd.NextBuffered()
		if err != nil {
			l.mu.Lock()
			l.reader = nil
			l.mu.Unlock()
			l.fail(err)
			return
		}
		if !ok {
			break
		}
		l.mu.Lock()
		l.routeLocked(p, nil)
		l.mu.Unlock()
		l.runUnsolicited()
	}
	l.mu.Lock()
	l.handOffLocked()
	l.mu.Unlock()
}

// routeLocked delivers one packet. It reports own=true when the packet is
// for w itself (w's Conn, or a new Conn for the acceptor w, returned as c);
// the caller then still holds it in the read buffer.
func (l *NodeLink) routeLocked(p proto.Packet, w *waiter) (own bool, c *Conn) {
	l.stats.PacketsIn++
	l.stats.BytesIn += uint64(p.Size)
	if l.cfg.KeepAlive > 0 {
		l.lastRecv = time.Now()
	}
	if l.ours(p) {
		c = l.local[p.ID]
		if c == nil || c.rxClosed {
			l.unroutableLocked(p, c == nil)
			return false, nil
		}
		return l.deliverLocked(c, p, w), nil
	}
	if c = l.peer[p.ID]; c != nil {
		if c.rxClosed {
			l.unroutableLocked(p, false)
			return false, nil
		}
		return l.deliverLocked(c, p, w), nil
	}
	if l.routing == RouteParity && l.peerIDs.seen(p.ID) {
		l.unroutableLocked(p, false)
		return false, nil
	}
	if p.Code == proto.AnswerBit {
		// An Error never opens a connection.
		l.unroutableLocked(p, true)
		return false, nil
	}
	if l.routing == RouteParity {
		l.peerIDs.mark(p.ID)
	}
	if p.Code == codePing && l.cfg.AnswerPing {
		if !l.tx.control(p.ID, &proto.Pong{}) {
			l.stats.DroppedReplies++
		}
		return false, nil
	}
	acceptor := w != nil && w.conn == nil
	if l.noAccept || (!acceptor && len(l.acceptq)-l.acceptHead >= l.cfg.AcceptBacklog) {
		l.stats.RepliedRefused++
		l.replyLocked(p.ID, "connection refused")
		return false, nil
	}
	c = l.connLocked(p.ID, false, acceptor && w.light)
	l.peer[p.ID] = c
	if acceptor && w.light {
		c.rxClosed = true // Recv1: one request per id; more get "connection closed"
		return true, c
	}
	l.enqueueLocked(c, p)
	if acceptor {
		return true, c
	}
	l.acceptq = append(l.acceptq, c)
	l.aw.unparkLocked(l)
	return false, nil
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
func (l *NodeLink) deliverLocked(c *Conn, p proto.Packet, w *waiter) bool {
	if w == &c.w && c.q.len() == 0 {
		return true
	}
	n := len(p.Args)
	if c.q.len() > 0 && (c.q.bytes+n > l.cfg.ConnRecvBuffer || l.queued+n > l.cfg.LinkRecvBuffer) {
		l.stats.Overflows++
		l.abortLocked(c, ErrConnOverflow, "receive queue overflow")
		return false
	}
	l.enqueueLocked(c, p)
	c.w.unparkLocked(l)
	return false
}

func (l *NodeLink) enqueueLocked(c *Conn, p proto.Packet) {
	c.q.push(newRxBuf(p.Code, p.Args))
	l.queued += len(p.Args)
}

// abortLocked ends c's receiving with err, drops what was queued for it and
// tells the peer why on c's id.
func (l *NodeLink) abortLocked(c *Conn, err error, reason string) {
	c.rxClosed = true
	if c.rxErr == nil {
		c.rxErr = err
	}
	l.queued -= c.q.bytes
	c.q.drain()
	l.replyLocked(c.id, reason)
	c.w.unparkLocked(l)
	if l.reader == &c.w {
		l.interruptLocked()
	}
}

// unroutableLocked handles a packet for no open connection: an Error is
// passed to OnUnsolicitedError, a late answer is dropped under answer-bit
// routing, anything else is answered "connection closed".
func (l *NodeLink) unroutableLocked(p proto.Packet, unknown bool) {
	switch {
	case p.Code == proto.AnswerBit:
		l.stats.UnsolicitedErrs++
		if l.cfg.OnUnsolicitedError != nil {
			l.unsolicited = append(l.unsolicited, unsolicited{id: p.ID, args: append([]byte(nil), p.Args...)})
		}
	case l.routing == RouteAnswerBit && proto.IsAnswer(p.Code):
		l.stats.DroppedAnswers++
	default:
		l.stats.RepliedClosed++
		l.replyLocked(p.ID, "connection closed")
	}
}

// runUnsolicited calls OnUnsolicitedError for the Errors routing collected,
// outside l.mu. Only the baton holder calls it.
func (l *NodeLink) runUnsolicited() {
	l.mu.Lock()
	todo := l.unsolicited
	l.unsolicited = nil
	l.mu.Unlock()
	for _, u := range todo {
		var e proto.Error
		if e.DecodeArgs(u.args) == nil {
			l.cfg.OnUnsolicitedError(u.id, &e)
		}
	}
}

// replyLocked sends Error{PROTOCOL_ERROR, reason} on id without blocking.
func (l *NodeLink) replyLocked(id uint32, reason string) {
	e := proto.Error{Code: proto.CodeProtocolError, Message: reason}
	if !l.tx.control(id, &e) {
		l.stats.DroppedReplies++
	}
}

func (l *NodeLink) popAcceptLocked() *Conn {
	if l.acceptHead == len(l.acceptq) {
		return nil
	}
	c := l.acceptq[l.acceptHead]
	l.acceptq[l.acceptHead] = nil
	l.acceptHead++
	if l.acceptHead == len(l.acceptq) {
		l.acceptq, l.acceptHead = l.acceptq[:0], 0
	}
	return c
}

// acceptErrLocked is the error for Accept/Recv1 on a link that cannot accept.
func (l *NodeLink) acceptErrLocked() error {
	switch {
	case l.closed:
		return ErrLinkClosed
	case l.downErr != nil:
		if !l.acceptDown {
			l.acceptDown = true
			return l.downErr
		}
		return ErrLinkDown
	case l.noAccept:
		return ErrLinkNoListen
	}
	return nil
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
			if l.reader == w {
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
