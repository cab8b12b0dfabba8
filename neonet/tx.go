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

	mu       sync.Mutex
	space    sync.Cond // signalled when the buffer drains, ownership ends or the link fails
	buf      []byte    // packets appended since the owner last took the buffer
	spare    []byte    // the other buffer, reused to avoid allocation
	base     int64     // stream offset of buf[0]
	marks    fifo[int64]
	lastMark int64
	out      []byte // the buffer the owner is writing; out[outOff:] is unwritten
	outOff   int
	outBase  int64 // stream offset of out[0]
	err      error // sticky: the link is closed or down
	packets  uint64
	bytes    uint64

	ctlMu      sync.Mutex
	ctl        []byte // control packets not yet taken by the owner
	ctlSpare   []byte
	ctlPackets uint64
	ctlBytes   uint64

	// Owner only.
	pieceEnd int    // end in out of the piece being written: a packet boundary
	ctlRest  []byte // unwritten bytes of the current control batch
	raw     syscall.RawConn
	rawFn   func(fd uintptr) bool // t.rawWrite, bound once: no allocation per write
	rawOut  []byte
	rawN    int
	rawErr  error

	spawnMu   sync.Mutex
	noSpawn   bool         // the link ended: start no more flushers
	lastWrite atomic.Int64 // unix nanoseconds of the last write that moved data bytes
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
// nil, ends the wait.
func (t *txState) send(ctx context.Context, c *Conn, id uint32, msg proto.Msg) error {
	size := msg.ArgsSize() + maxHeader
	t.mu.Lock()
	var stop func() bool
	for {
		if t.err != nil {
			break
		}
		if c != nil && c.txClosed.Load() {
			t.mu.Unlock()
			cleanup(stop)
			return ErrClosedConn
		}
		if t.fitsLocked(size) {
			break
		}
		if ctx != nil {
			if err := ctx.Err(); err != nil {
				t.mu.Unlock()
				cleanup(stop)
				return err
			}
			if stop == nil && ctx.Done() != nil {
				stop = context.AfterFunc(ctx, t.wake)
			}
		}
		t.space.Wait()
	}
	if t.err != nil {
		err := t.err
		t.mu.Unlock()
		cleanup(stop)
		return err
	}
	n := len(t.buf)
	var err error
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
	t.mu.Unlock()
	cleanup(stop)
	if !t.writing.CompareAndSwap(false, true) {
		return nil
	}
	return t.own(true)
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
func (t *txState) pendingLocked() int { return len(t.buf) + len(t.out) - t.outOff }


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
// to a flusher. An inline owner (a sender) writes at most one batch.
// It returns the write error, so that the Send that hit it gets the real
// I/O error.
func (t *txState) own(inline bool) error {
	for {
		out, ctl := t.next()
		if out == nil {
			if t.release() {
				return nil
			}
			continue
		}
		var n int
		var err error
		if inline && t.raw != nil {
			n, err = t.tryWrite(out)
		} else {
			n, err = t.writeAll(out, !ctl)
		}
		t.advance(n, ctl)
		if err != nil {
			t.l.fail(err)
			t.writing.Store(false)
			t.wake()
			if t.closed() {
				// Close cut the write short: report that, not the raw
				// "use of closed connection" it caused.
				return ErrLinkClosed
			}
			return err
		}
		if inline && t.more() {
			if t.spawnFlusher() {
				return nil
			}
		}
	}
}

// next returns the owner's next piece: the rest of a partly written one,
// else pending control packets (only at a packet boundary), else data up to
// the next mark. It takes a new buffer of appended packets when the one
// being written is done.
func (t *txState) next() (piece []byte, ctl bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return nil, false
	}
	if len(t.ctlRest) > 0 {
		return t.ctlRest, true
	}
	if t.outOff < t.pieceEnd {
		return t.out[t.outOff:t.pieceEnd], false
	}
	t.ctlMu.Lock()
	if len(t.ctl) > 0 {
		piece = t.ctl
		t.ctl = t.ctlSpare[:0]
		t.ctlSpare = nil
		t.ctlMu.Unlock()
		t.ctlRest = piece
		return piece, true
	}
	t.ctlMu.Unlock()
	if t.outOff == len(t.out) {
		if len(t.buf) == 0 {
			return nil, false
		}
		t.spare, t.out = t.out[:0], t.buf
		if cap(t.spare) > 2*t.l.cfg.SendBuffer {
			t.spare = nil // do not pin a buffer grown by one huge packet
		}
		t.buf = t.spare[:0]
		t.spare = nil
		t.outBase, t.outOff, t.pieceEnd = t.base, 0, 0
		t.base += int64(len(t.out))
	}
	end := len(t.out)
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
	return t.out[t.outOff:end], false
}

// advance records that n bytes of the owner's piece were written.
func (t *txState) advance(n int, ctl bool) {
	if n > 0 && !ctl {
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

// more reports whether anything is waiting to be written.
func (t *txState) more() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return false
	}
	return len(t.ctlRest) > 0 || t.outOff < len(t.out) || len(t.buf) > 0 || t.ctlPendingLocked()
}

// release gives up ownership. It reports false if work arrived meanwhile
// and ownership was taken back, so the caller must go on writing.
func (t *txState) release() bool {
	t.writing.Store(false)
	t.wake()
	if !t.more() || !t.writing.CompareAndSwap(false, true) {
		return true
	}
	return false
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
	t.own(false)
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
			t.l.nc.SetWriteDeadline(time.Now().Add(timeout))
		}
		n, err := t.l.nc.Write(piece)
		total += n
		if n > 0 && data {
			t.lastWrite.Store(time.Now().UnixNano())
		}
		if err != nil {
			if isTimeout(err) {
				err = ErrWriteTimeout
			}
			return total, err
		}
	}
	if timeout > 0 {
		// A deadline left behind would fail a later non-blocking write.
		t.l.nc.SetWriteDeadline(noDeadline)
	}
	return total, nil
}

// closed reports whether the writing was stopped by Close (or Shutdown).
func (t *txState) closed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err == ErrLinkClosed
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
	for t.err == nil && ctx.Err() == nil && (t.outOff < len(t.out) || len(t.buf) > 0 || t.writing.Load() || t.ctlPendingLocked()) {
		t.space.Wait()
	}
	if t.err != nil {
		return t.err
	}
	return ctx.Err()
}

func (t *txState) ctlPendingLocked() bool {
	t.ctlMu.Lock()
	defer t.ctlMu.Unlock()
	return len(t.ctl) > 0
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
