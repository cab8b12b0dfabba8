package neonet

import (
	"sync"
	"time"

	"github.com/neolink/neolink/proto"
)

// Sending: group commit.
//
// Send encodes the packet into the link's pending buffer under tx.mu. If no
// goroutine is writing, the sender becomes the writer: it takes the buffer
// and writes it with one Write call, outside the lock. Senders that arrive
// meanwhile only append and return; their packets go out in the writer's
// next batch. When the writer finds more pending after its own write, it
// hands the writing to the link's flusher goroutine instead of staying on,
// so one sender's latency is never held hostage by others' traffic.
//
// A serial request/reply therefore costs one Write per packet and no
// goroutine switch, and under load many packets share each Write, with no
// timer. One contiguous buffer also keeps TLS efficient: net.Buffers would
// degrade to one TLS record and one write per packet on a tls.Conn.
//
// Invariants (under tx.mu):
//   - writing is true iff one goroutine (a sender or the flusher) owns the
//     socket for writing; only the owner calls nc.Write.
//   - A token is sent on kick only by the goroutine that sets writing from
//     false to true on behalf of the flusher, or by a writer handing over
//     (writing stays true); the flusher consumes it before writing, so kick
//     (capacity 1) never holds more than one token and the send never blocks.
//   - Bytes in buf are either written by the current owner's next batch or
//     reported lost through err; once err is set nothing more is written.
type txState struct {
	l *NodeLink

	mu      sync.Mutex
	space   sync.Cond // signalled when buf shrinks or the link fails
	buf     []byte    // encoded packets not yet handed to Write
	spare   []byte    // the other buffer, reused to avoid allocation
	writing bool
	err     error // sticky: the link is closed or down
	kick    chan struct{}

	packets, bytes uint64 // stats: packets and bytes queued for writing
}

func (t *txState) init(l *NodeLink) {
	t.l = l
	t.space.L = &t.mu
	t.kick = make(chan struct{}, 1)
	l.bg.Add(1)
	go t.flusher()
}

// send encodes msg for id and sends it, waiting for buffer space if the
// send buffer is full. c, if not nil, is checked for closing while waiting.
func (t *txState) send(c *Conn, id uint32, msg proto.Msg) error {
	t.mu.Lock()
	for t.err == nil && len(t.buf) >= t.l.cfg.SendBuffer {
		if c != nil && c.txClosed.Load() {
			t.mu.Unlock()
			return ErrClosedConn
		}
		t.space.Wait()
	}
	if t.err != nil {
		t.mu.Unlock()
		return t.err
	}
	if c != nil && c.txClosed.Load() {
		t.mu.Unlock()
		return ErrClosedConn
	}
	n := len(t.buf)
	var err error
	t.buf, err = proto.AppendPacket(t.buf, t.l.enc, id, msg, t.l.cfg.MaxPacketSize)
	if err != nil {
		t.mu.Unlock()
		return err
	}
	t.packets++
	t.bytes += uint64(len(t.buf) - n)
	if t.writing {
		t.mu.Unlock()
		return nil
	}
	t.writing = true
	return t.writeLocked()
}

// writeLocked writes the pending buffer as the owner. Called with mu held
// and writing set; returns with mu released. It returns the write error, so
// that the Send that caused it gets the real I/O error.
func (t *txState) writeLocked() error {
	if err := t.flushOnceLocked(); err != nil {
		t.writing = false
		t.mu.Unlock()
		t.l.fail(err)
		return err
	}
	if len(t.buf) > 0 && t.err == nil {
		t.kick <- struct{}{} // hand over to the flusher; writing stays true
	} else {
		t.writing = false
	}
	t.mu.Unlock()
	return nil
}

// flushOnceLocked writes what is pending with one Write, outside the lock,
// while new packets go to the other buffer. Called and returns with mu held.
func (t *txState) flushOnceLocked() error {
	out := t.buf
	t.buf = t.spare[:0]
	t.mu.Unlock()
	_, err := t.l.nc.Write(out)
	t.mu.Lock()
	t.spare = out[:0]
	if cap(t.spare) > 2*t.l.cfg.SendBuffer {
		t.spare = nil // do not pin a buffer grown by one huge packet
	}
	t.space.Broadcast()
	return err
}

// flusher writes batches handed over by senders until the link ends.
func (t *txState) flusher() {
	defer t.l.bg.Done()
	for range t.kick {
		t.mu.Lock()
		for len(t.buf) > 0 && t.err == nil {
			if err := t.flushOnceLocked(); err != nil {
				t.mu.Unlock()
				t.l.fail(err)
				t.mu.Lock()
				break
			}
		}
		t.writing = false
		t.space.Broadcast()
		t.mu.Unlock()
	}
}

// control queues a small link-generated packet (an Error reply) without
// ever blocking: the receiving goroutine calls it and must not wait for the
// socket. It reports false when the packet was dropped because the link is
// down or the send buffer is over its bound (a peer flooding us with packets
// we must refuse cannot grow our memory).
func (t *txState) control(id uint32, msg proto.Msg) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil || len(t.buf) >= t.l.cfg.SendBuffer {
		return false
	}
	var err error
	n := len(t.buf)
	if t.buf, err = proto.AppendPacket(t.buf, t.l.enc, id, msg, t.l.cfg.MaxPacketSize); err != nil {
		return false
	}
	t.packets++
	t.bytes += uint64(len(t.buf) - n)
	if !t.writing {
		t.writing = true
		t.kick <- struct{}{}
	}
	return true
}

// wake makes senders blocked on a full buffer re-check their Conn.
func (t *txState) wake() {
	t.mu.Lock()
	t.space.Broadcast()
	t.mu.Unlock()
}

// shutdown fails all senders with err and stops the flusher. Idempotent.
func (t *txState) shutdown(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return
	}
	t.err = err
	t.buf = nil
	t.space.Broadcast()
	close(t.kick)
}

// drain waits until everything queued has been written or the link ended.
// Shutdown bounds it by closing the link when its context ends.
func (t *txState) drain() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for (len(t.buf) > 0 || t.writing) && t.err == nil {
		t.space.Wait()
	}
	return t.err
}

var noDeadline time.Time
