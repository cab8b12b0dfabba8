package neonet

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/neolink/neolink/proto"
)

// Sending: group commit, control packets first, and writes that never
// hold a sender hostage.
//
// Send encodes its packet into the link's data buffer under tx.mu. If no
// goroutine owns the socket for writing, the sender becomes the owner and
// writes the pending batch itself; senders that arrive meanwhile only
// append and return, and their packets go out in the owner's next batch.
// An owning sender writes one batch and hands anything left to a flusher
// goroutine, started on demand, so one sender's latency is never held
// hostage by others' traffic. A serial request/reply therefore costs one
// write per packet and no goroutine switch; under load many packets share
// each write, with no timer.
//
// On OS sockets the owning sender's write is a single non-blocking attempt
// (through syscall.RawConn): whatever the kernel does not take at once goes
// to the flusher, so Send never blocks in the kernel and Conn.Close or a
// context can always release a sender waiting for buffer space. On other
// connections (TLS, net.Pipe) the owning sender's write blocks like a
// net.Conn write; see Conn.Send.
//
// Link-generated control packets (Ping, Pong, Error replies) go into a small
// queue of their own, under ctlMu, which the reader takes while holding
// NodeLink.mu and which is never held during I/O or the encoding of data:
// a sender encoding a 64 MiB message cannot stall the reader. The owner
// writes pending control packets before the next data batch. Data batches
// end at packet boundaries at least markSpacing apart, so control packets
// wait behind at most about markSpacing of data, or one larger packet.
//
// Invariants:
//   - writing is true iff one goroutine (a sender or the flusher) owns the
//     socket for writing; only the owner writes, takes buf (swapping it
//     with spare), and moves outOff, pieceEnd and ctlRest. Ownership is
//     taken with a CompareAndSwap; an owner that finds nothing to write
//     releases it and then re-checks for work, so an append that lost the
//     race to a finishing owner is never left unwritten.
//   - Senders append whole packets to buf only; the owner writes out, a
//     buffer no sender touches, in pieces that end at packet boundaries
//     (marks), and writes control packets only between pieces.
//   - Bytes in buf are written in order or reported lost through err; once
//     err is set nothing more is written.
//   - Lock NodeLink.mu BEFORE ctlMu, and tx.mu BEFORE ctlMu. tx.mu is never
//     held while taking NodeLink.mu; spawnMu is a leaf.
type txState struct {
	l *NodeLink

	writing atomic.Bool

	mu        sync.Mutex
	space     sync.Cond // signalled when the buffer drains, ownership ends or the link fails
	buf       []byte    // packets appended since the owner last took the buffer
	spare     []byte    // the other buffer, reused to avoid allocation
	base      int64     // stream offset of buf[0]
	marks     fifo[int64]
	lastMark  int64
	items     fifo[*largeItem] // large packets queued, in stream order
	itemBytes int              // their sizes, counted against SendBuffer
	out       []byte           // the buffer the owner is writing; out[outOff:] is unwritten
	outOff    int
	outBase   int64 // stream offset of out[0]
	err       error // sticky: the link is closed or down
	packets   uint64
	bytes     uint64

	ctlMu      sync.Mutex
	ctl        []byte // control packets not yet taken by the owner
	ctlSpare   []byte
	ctlPackets uint64
	ctlBytes   uint64

	// Owner only.
	deadline time.Time // the write deadline set on the connection, if any
	pieceEnd int       // end in out of the piece being written: a packet boundary
	ctlRest  []byte    // unwritten bytes of the current control batch
	raw      syscall.RawConn
	rawFn    func(fd uintptr) bool // t.rawWrite, bound once: no allocation per write
	rawOut   []byte
	rawN     int
	rawErr   error

	spawnMu   sync.Mutex
	noSpawn   bool         // the link ended: start no more flushers
	lastWrite atomic.Int64 // unix nanoseconds of the last write that moved data bytes (kept with KeepAlive)
}

const (
	// markSpacing is the least data between two batch boundaries: how
	// much data a control packet may wait behind (unless one packet is
	// larger).
	markSpacing = 64 << 10
	// writePiece bounds one blocking Write, so that progress is seen (for
	// WriteTimeout and keepalive) during a large write.
	writePiece = 512 << 10
	// ctlLimit bounds the control queue. Replies beyond it are dropped and
	// counted (a peer flooding us with packets we must refuse cannot grow
	// our memory); the keepalive Ping is never dropped.
	ctlLimit = 64 << 10
	// maxHeader is more than any framing's header.
	maxHeader = 16
)

func (t *txState) init(l *NodeLink) {
	t.l = l
	t.space.L = &t.mu
	if sc, ok := l.nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			t.raw = raw
			t.rawFn = t.rawWrite
		}
	}
	t.lastWrite.Store(time.Now().UnixNano())
}

// send encodes msg for id and queues it, waiting while the send buffer is
// full. c, if not nil, is checked for closing while waiting; ctx, if not
// nil, ends the wait. A message big enough to carry large bins goes by
// sendLarge.
func (t *txState) send(ctx context.Context, c *Conn, id uint32, msg proto.Msg) error {
	size := msg.ArgsSize() + maxHeader
	if size >= largeMin {
		return t.sendLarge(ctx, c, id, msg)
	}
	t.mu.Lock()
	stop, err := t.waitSpaceLocked(ctx, c, size)
	if err != nil {
		t.mu.Unlock()
		cleanup(stop)
		return err
	}
	n := len(t.buf)
	t.buf, err = proto.AppendPacket(t.buf, t.l.enc, id, msg, t.l.cfg.MaxPacketSize)
	if err != nil {
		t.mu.Unlock()
		cleanup(stop)
		return err
	}
	t.packets++
	t.bytes += uint64(len(t.buf) - n)
	if end := t.base + int64(len(t.buf)); end-t.lastMark >= markSpacing {
		t.marks.push(end)
		t.lastMark = end
	}
	if !t.writing.CompareAndSwap(false, true) {
		t.mu.Unlock()
		cleanup(stop)
		return nil
	}
	// Owner now: take the first batch in the same critical section.
	piece, kind, it := t.nextLocked()
	t.mu.Unlock()
	cleanup(stop)
	return t.ownFrom(true, nil, piece, kind, it)
}

// waitSpaceLocked waits until size bytes may be queued. It returns the
// error that ended the wait instead, and the context registration to
// clean up.
func (t *txState) waitSpaceLocked(ctx context.Context, c *Conn, size int) (stop func() bool, _ error) {
	for {
		if t.err != nil {
			return stop, t.err
		}
		if c != nil && c.txClosed.Load() {
			return stop, ErrClosedConn
		}
		if t.fitsLocked(size) {
			return stop, nil
		}
		if ctx != nil {
			if err := ctx.Err(); err != nil {
				return stop, err
			}
			if stop == nil && ctx.Done() != nil {
				stop = context.AfterFunc(ctx, t.wake)
			}
		}
		t.space.Wait()
	}
}

// Large messages: scatter-gather from the sender's memory.
//
// A message whose encoding may reach largeMin is encoded with its large
// bins left out (proto.AppendPacketSG) into an item of its own, queued at
// its place in the stream, and written straight from the message's own
// memory: the payload is never copied into the send buffer. The sender
// therefore waits until its packet is written (its memory must not change
// before), like a write to a net.Conn; a large write is worth the wait, and
// the send bound still holds for the item's bytes while it is queued.

// largeMin is the least (upper bound of the) encoded size that takes the
// scatter-gather path.
const largeMin = 64 << 10

// largeItem is one large packet queued for writing.
type largeItem struct {
	at   int64 // offset in the data stream (buf bytes only) it is written at
	head []byte
	seg  proto.Segments
	size int
	// Guarded by tx.mu.
	started   bool  // the owner began writing it
	cancelled bool  // its sender gave up before the write began
	done      bool  // written, or failed (err)
	err       error // the write error, if this item's write failed
}

var largeItems = sync.Pool{New: func() any { return new(largeItem) }}

func (t *txState) sendLarge(ctx context.Context, c *Conn, id uint32, msg proto.Msg) error {
	it := largeItems.Get().(*largeItem)
	it.seg.Reset()
	var err error
	it.head, err = proto.AppendPacketSG(it.head[:0], &it.seg, t.l.enc, id, msg, t.l.cfg.MaxPacketSize)
	if err != nil {
		largeItems.Put(it)
		return err
	}
	it.size = len(it.head) + it.seg.Len()
	it.started, it.cancelled, it.done, it.err = false, false, false, nil
	t.mu.Lock()
	stop, err := t.waitSpaceLocked(ctx, c, it.size)
	if err != nil {
		t.mu.Unlock()
		cleanup(stop)
		largeItems.Put(it)
		return err
	}
	it.at = t.base + int64(len(t.buf))
	t.items.push(it)
	t.itemBytes += it.size
	t.packets++
	t.bytes += uint64(it.size)
	t.mu.Unlock()
	if t.writing.CompareAndSwap(false, true) {
		t.own(false, it)
	}
	// Wait until the packet is written or the link fails. Until its write
	// begins, closing the Conn or ctx ending withdraws it; once begun it is
	// written completely (the stream's framing depends on it), bounded by
	// Config.WriteTimeout.
	if stop == nil && ctx != nil && ctx.Done() != nil {
		stop = context.AfterFunc(ctx, t.wake)
	}
	t.mu.Lock()
	var gaveUp error
	for !it.done && t.err == nil {
		if !it.started {
			if c != nil && c.txClosed.Load() {
				gaveUp = ErrClosedConn
			} else if ctx != nil && ctx.Err() != nil {
				gaveUp = ctx.Err()
			}
			if gaveUp != nil {
				it.cancelled = true
				t.itemBytes -= it.size
				t.space.Broadcast()
				break
			}
		}
		t.space.Wait()
	}
	done, werr, lerr := it.done, it.err, t.err
	t.mu.Unlock()
	cleanup(stop)
	switch {
	case gaveUp != nil:
		return gaveUp // the queue still holds it: not recycled
	case done && werr == nil:
		largeItems.Put(it)
		return nil
	case werr != nil:
		if lerr := t.l.Err(); lerr != nil {
			return lerr
		}
		return werr
	}
	// The link failed before the item was written; its writer may still
	// hold it, so it is not recycled.
	return lerr
}

func cleanup(stop func() bool) {
	if stop != nil {
		stop()
	}
}

// fitsLocked reports whether a packet of size bytes may be queued: the
// bound holds for the bytes actually queued, and a packet larger than the
// whole buffer goes alone.
func (t *txState) fitsLocked(size int) bool {
	pending := t.pendingLocked()
	return pending == 0 || pending+size <= t.l.cfg.SendBuffer
}

// pendingLocked is the data queued for writing and not yet written.
func (t *txState) pendingLocked() int { return len(t.buf) + len(t.out) - t.outOff + t.itemBytes }

// control queues a small link-generated packet without ever blocking: the
// reader calls it (under NodeLink.mu) and must not wait for the socket or
// for a sender. It reports false when the packet was dropped because the
// link is down or the control queue is full; force (the keepalive Ping)
// ignores the bound.
func (t *txState) control(id uint32, msg proto.Msg, force bool) bool {
	t.ctlMu.Lock()
	if (!force && len(t.ctl) >= ctlLimit) || t.ended() {
		t.ctlMu.Unlock()
		return false
	}
	n := len(t.ctl)
	var err error
	t.ctl, err = proto.AppendPacket(t.ctl, t.l.enc, id, msg, t.l.cfg.MaxPacketSize)
	if err == nil {
		t.ctlPackets++
		t.ctlBytes += uint64(len(t.ctl) - n)
	}
	t.ctlMu.Unlock()
	if err != nil {
		return false
	}
	if t.writing.CompareAndSwap(false, true) {
		if !t.spawnFlusher() {
			t.writing.Store(false)
		}
	}
	return true
}

func (t *txState) ended() bool {
	t.spawnMu.Lock()
	defer t.spawnMu.Unlock()
	return t.noSpawn
}

// own writes as the owner until there is nothing left or the work is handed
// to a flusher. An inline owner (a small sender) writes at most one batch,
// with one non-blocking attempt on OS sockets, and hands any large item to
// the flusher. A large sender (mine) writes until its own item is written.
// It returns the write error, so that the Send that hit it gets the real
// I/O error.
func (t *txState) own(inline bool, mine *largeItem) error {
	piece, kind, it := t.next()
	return t.ownFrom(inline, mine, piece, kind, it)
}

// ownFrom is own, given the owner's first piece.
func (t *txState) ownFrom(inline bool, mine *largeItem, piece []byte, kind pieceKind, it *largeItem) error {
	for first := true; ; first = false {
		if !first {
			piece, kind, it = t.next()
		}
		var n int
		var err error
		switch kind {
		case pieceNone:
			if t.releaseIfIdle() {
				return nil
			}
			continue
		case pieceItem:
			if inline {
				if t.spawnFlusher() {
					return nil
				}
				continue
			}
			n, err = t.writeItem(it)
		default:
			if inline && t.raw != nil {
				n, err = t.tryWrite(piece)
			} else {
				n, err = t.writeAll(piece, kind == pieceData)
			}
			if err == nil && inline && kind == pieceData {
				if t.advanceAndRelease(n) {
					return nil // the common serial case: one critical section
				}
			} else {
				t.advance(n, kind == pieceCtl)
			}
		}
		if err != nil {
			t.l.fail(err)
			t.writing.Store(false)
			t.wake()
			// Report the link's state, not the raw error: a Close (or a
			// failure found by the reader) that cut the write short shows
			// up as "use of closed network connection". When this write
			// took the link down, its error is the cause inside.
			if lerr := t.l.Err(); lerr != nil {
				return lerr
			}
			return err
		}
		if inline || (mine != nil && mine.isDone(t)) {
			// Done with our own write: give ownership up if nothing is
			// left, in one critical section (the common case of a serial
			// request/reply), or hand the rest to a flusher.
			if !t.releaseIfIdle() && !t.spawnFlusher() {
				continue
			}
			return nil
		}
	}
}

func (it *largeItem) isDone(t *txState) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return it.done
}

// writeItem writes a large item from its parts, and marks it done.
func (t *txState) writeItem(it *largeItem) (int, error) {
	total := 0
	var err error
	for _, part := range it.seg.Buffers(it.head) {
		var n int
		n, err = t.writeAll(part, true)
		total += n
		if err != nil {
			break
		}
	}
	t.mu.Lock()
	t.items.pop()
	t.itemBytes -= it.size
	it.done, it.err = true, err
	t.space.Broadcast()
	t.mu.Unlock()
	return total, err
}

// dropCancelledLocked removes the items at the head of the queue whose
// senders gave up before their write began.
func (t *txState) dropCancelledLocked() {
	for {
		it, ok := t.items.peek()
		if !ok || !it.cancelled {
			return
		}
		t.items.pop()
	}
}

type pieceKind uint8

const (
	pieceNone pieceKind = iota
	pieceData
	pieceCtl
	pieceItem
)

// next returns the owner's next piece: the rest of a partly written one,
// else pending control packets (only at a packet boundary), else a large
// item due at this point of the stream, else data up to the next mark or
// item. It takes a new buffer of appended packets when the one being
// written is done.
func (t *txState) next() (piece []byte, kind pieceKind, it *largeItem) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nextLocked()
}

// nextLocked is next with tx.mu held.
func (t *txState) nextLocked() (piece []byte, kind pieceKind, it *largeItem) {
	if t.err != nil {
		return nil, pieceNone, nil
	}
	if len(t.ctlRest) > 0 {
		return t.ctlRest, pieceCtl, nil
	}
	if t.outOff < t.pieceEnd {
		return t.out[t.outOff:t.pieceEnd], pieceData, nil
	}
	t.ctlMu.Lock()
	if len(t.ctl) > 0 {
		piece = t.ctl
		t.ctl = t.ctlSpare[:0]
		t.ctlSpare = nil
		t.ctlMu.Unlock()
		t.ctlRest = piece
		return piece, pieceCtl, nil
	}
	t.ctlMu.Unlock()
	t.dropCancelledLocked()
	pos := t.outBase + int64(t.outOff)
	if it, ok := t.items.peek(); ok && it.at == pos {
		it.started = true
		return nil, pieceItem, it
	}
	if t.outOff == len(t.out) {
		if len(t.buf) == 0 {
			return nil, pieceNone, nil
		}
		t.spare, t.out = t.out[:0], t.buf
		if cap(t.spare) > 2*t.l.cfg.SendBuffer {
			t.spare = nil // do not pin a buffer grown by one huge packet
		}
		t.buf = t.spare[:0]
		t.spare = nil
		t.outBase, t.outOff, t.pieceEnd = t.base, 0, 0
		t.base += int64(len(t.out))
		pos = t.outBase
		if it, ok := t.items.peek(); ok && it.at == pos {
			it.started = true
			return nil, pieceItem, it
		}
	}
	end := len(t.out)
	if it, ok := t.items.peek(); ok && it.at > pos && it.at-t.outBase < int64(end) {
		end = int(it.at - t.outBase)
	}
	for {
		m, ok := t.marks.peek()
		if !ok {
			break
		}
		if i := m - t.outBase; i > int64(t.outOff) {
			if i < int64(end) {
				end = int(i)
			}
			break
		}
		t.marks.pop()
	}
	t.pieceEnd = end
	return t.out[t.outOff:end], pieceData, nil
}

// advance records that n bytes of the owner's piece were written.
func (t *txState) advance(n int, ctl bool) {
	if n > 0 && !ctl && t.l.cfg.KeepAlive > 0 {
		t.lastWrite.Store(time.Now().UnixNano())
	}
	if ctl {
		t.ctlRest = t.ctlRest[n:]
		if len(t.ctlRest) == 0 {
			t.ctlMu.Lock()
			t.ctlSpare = t.ctlRest[:0:cap(t.ctlRest)]
			if cap(t.ctlSpare) > ctlLimit {
				t.ctlSpare = nil
			}
			t.ctlMu.Unlock()
			t.ctlRest = nil
		}
		return
	}
	t.mu.Lock()
	t.outOff += n
	t.space.Broadcast()
	t.mu.Unlock()
}

// advanceAndRelease is advance for a data piece, then releaseIfIdle, in one
// critical section: the common end of a serial request's write. It reports
// whether ownership was given up.
func (t *txState) advanceAndRelease(n int) bool {
	if n > 0 && t.l.cfg.KeepAlive > 0 {
		t.lastWrite.Store(time.Now().UnixNano())
	}
	t.mu.Lock()
	t.outOff += n
	t.ctlMu.Lock()
	idle := t.err != nil || t.idleLocked()
	if idle {
		t.writing.Store(false)
	}
	t.ctlMu.Unlock()
	t.space.Broadcast() // senders wait for space, drain for ownership to end
	t.mu.Unlock()
	return idle
}

// idleLocked reports whether nothing is waiting to be written. Called with
// tx.mu and ctlMu held: ownership may be given up only under both, so that
// an append made before is seen here, and one made after finds writing
// false and takes ownership itself.
func (t *txState) idleLocked() bool {
	t.dropCancelledLocked()
	return len(t.ctlRest) == 0 && t.outOff == len(t.out) && len(t.buf) == 0 &&
		t.items.len() == 0 && len(t.ctl) == 0
}

// releaseIfIdle gives up ownership if nothing is waiting to be written (or
// the link ended), and reports whether it did.
func (t *txState) releaseIfIdle() bool {
	t.mu.Lock()
	t.ctlMu.Lock()
	idle := t.err != nil || t.idleLocked()
	if idle {
		t.writing.Store(false)
		t.space.Broadcast() // drain waits for ownership to end
	}
	t.ctlMu.Unlock()
	t.mu.Unlock()
	return idle
}

// spawnFlusher hands ownership to a new flusher goroutine. It reports false
// if the link has ended (ownership stays with the caller).
func (t *txState) spawnFlusher() bool {
	t.spawnMu.Lock()
	defer t.spawnMu.Unlock()
	if t.noSpawn {
		return false
	}
	// shutdown sets noSpawn under spawnMu before Close waits on bg, so
	// this Add happens before that Wait.
	t.l.bg.Add(1)
	go t.flush()
	return true
}

func (t *txState) flush() {
	defer t.l.bg.Done()
	t.own(false, nil)
}

// tryWrite makes one non-blocking write attempt on an OS socket.
func (t *txState) tryWrite(out []byte) (int, error) {
	t.rawOut, t.rawN, t.rawErr = out, 0, nil
	if err := t.raw.Write(t.rawFn); err != nil {
		return 0, err
	}
	t.rawOut = nil
	return t.rawN, t.rawErr
}

func (t *txState) rawWrite(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), t.rawOut)
		if err == syscall.EINTR {
			continue
		}
		if n > 0 {
			t.rawN = n
		}
		if err != nil && err != syscall.EAGAIN {
			t.rawErr = &net.OpError{Op: "write", Net: "tcp", Source: t.l.nc.LocalAddr(), Addr: t.l.nc.RemoteAddr(), Err: err}
		}
		return true
	}
}

// writeAll writes out with blocking writes of at most writePiece bytes,
// each bounded by Config.WriteTimeout. Progress on data (not on control
// packets, whose writing proves nothing about the peer) is recorded for
// keepalive.
func (t *txState) writeAll(out []byte, data bool) (int, error) {
	timeout := t.l.cfg.WriteTimeout
	total := 0
	for total < len(out) {
		piece := out[total:min(len(out), total+writePiece)]
		if timeout > 0 {
			t.armWriteDeadline(timeout)
		}
		n, err := t.l.nc.Write(piece)
		total += n
		if n > 0 && data && t.l.cfg.KeepAlive > 0 {
			t.lastWrite.Store(time.Now().UnixNano())
		}
		if err != nil {
			if isTimeout(err) {
				err = ErrWriteTimeout
			}
			return total, err
		}
	}
	if timeout > 0 && t.raw != nil {
		// A deadline left behind would fail a later non-blocking write.
		t.l.nc.SetWriteDeadline(noDeadline)
		t.deadline = time.Time{}
	}
	return total, nil
}

// armWriteDeadline bounds the next write by timeout. On connections without
// non-blocking writes (TLS, net.Pipe) every write is a blocking one and the
// deadline stays set: it is moved only once half of it has passed, since
// setting a deadline can cost a timer allocation (net.Pipe) per write. A
// write there is so given up after between timeout/2 and timeout without
// progress.
func (t *txState) armWriteDeadline(timeout time.Duration) {
	now := time.Now()
	if t.raw == nil && t.deadline.Sub(now) > timeout/2 {
		return
	}
	t.deadline = now.Add(timeout)
	t.l.nc.SetWriteDeadline(t.deadline)
}

// wake makes senders blocked on a full buffer re-check their state.
func (t *txState) wake() {
	t.mu.Lock()
	t.space.Broadcast()
	t.mu.Unlock()
}

// shutdown fails all senders with err and stops the writing. Idempotent.
func (t *txState) shutdown(err error) {
	t.spawnMu.Lock()
	t.noSpawn = true
	t.spawnMu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return
	}
	t.err = err
	t.space.Broadcast()
}

// drain waits until everything queued has been written, the link ended, or
// ctx ended. It returns the link's error if the link ended.
func (t *txState) drain(ctx context.Context) error {
	stop := context.AfterFunc(ctx, t.wake)
	defer stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.err == nil && ctx.Err() == nil && (t.writing.Load() || !t.idleWithCtlLocked()) {
		t.space.Wait()
	}
	if t.err != nil {
		return t.err
	}
	return ctx.Err()
}

// idleWithCtlLocked is idleLocked for a caller holding only tx.mu.
func (t *txState) idleWithCtlLocked() bool {
	t.ctlMu.Lock()
	defer t.ctlMu.Unlock()
	return t.idleLocked()
}

// counters returns the packets and bytes queued for writing so far.
func (t *txState) counters() (packets, bytes uint64) {
	t.mu.Lock()
	packets, bytes = t.packets, t.bytes
	t.mu.Unlock()
	t.ctlMu.Lock()
	packets += t.ctlPackets
	bytes += t.ctlBytes
	t.ctlMu.Unlock()
	return packets, bytes
}

var noDeadline time.Time
