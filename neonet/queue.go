package neonet

import (
	"sync"

	"github.com/neolink/neolink/proto"
)

// rxBuf holds one received packet copied out of the link's read buffer, for a
// receiver that is not the goroutine that read it.
type rxBuf struct {
	code   uint16
	args   []byte
	lent   []byte // the reader's lent buffer args live in (large packets), or nil
	charge int    // what the packet costs against the receive bounds
}

// rxOverhead is what a queued packet costs beyond its buffer: the rxBuf, its
// queue slot and the allocator's rounding. Charging it makes floods of empty
// packets count against the receive bounds.
const rxOverhead = 64

// Buffers come in size classes, each with a pool, so that a small packet
// never lands in (and is never charged for) a big recycled buffer. Packets
// above the largest class get a buffer of their own size, left to the GC,
// so that what a packet is charged stays within a few percent of its size.
// The classes fit the common message sizes with their framing: a 4 KiB or
// 8 KiB object answer lands in the class just above it.
var rxClasses = [...]int{256, 1 << 10, 4<<10 + 512, 8<<10 + 512}

// rxPools[i] holds rxBufs whose args have capacity rxClasses[i].
var rxPools [len(rxClasses)]sync.Pool

// newRxBuf makes p queueable: a lent large packet is taken over as it is,
// without a copy (p.Lent is cleared: the rxBuf owns it now); anything else is
// copied out of the read buffer.
func newRxBuf(p *proto.Packet) *rxBuf {
	if p.Lent != nil {
		b, _ := lentBufs.Get().(*rxBuf)
		if b == nil {
			b = new(rxBuf)
		}
		b.code, b.args, b.lent = p.Code, p.Args, p.Lent
		p.Lent = nil
		b.charge = cap(p.Lent) + rxOverhead
		return b
	}
	code, args := p.Code, p.Args
	n := len(args)
	var b *rxBuf
	for i, size := range rxClasses {
		if n <= size {
			b, _ = rxPools[i].Get().(*rxBuf)
			if b == nil {
				b = &rxBuf{args: make([]byte, 0, size)}
			}
			break
		}
	}
	if b == nil {
		b = &rxBuf{args: make([]byte, 0, n)}
	}
	b.code = code
	b.args = append(b.args[:0], args...)
	b.charge = cap(b.args) + rxOverhead
	return b
}

// lentBufs holds rxBuf structs for lent packets; their buffers go back to
// the packet reader's pools (proto.Recycle).
var lentBufs sync.Pool

// takeLent detaches b's lent buffer, for a receiver that decodes in place
// and recycles it later, and frees b.
func (b *rxBuf) takeLent() []byte {
	lent := b.lent
	b.lent, b.args = nil, nil
	lentBufs.Put(b)
	return lent
}

// free returns b to its class's pool (a lent buffer to the reader's pools);
// an oversized buffer is left to the GC.
func (b *rxBuf) free() {
	if b.lent != nil {
		proto.Recycle(b.takeLent())
		return
	}
	for i, size := range rxClasses {
		if cap(b.args) == size {
			rxPools[i].Put(b)
			return
		}
	}
}

// fifo is a queue that reuses its backing array: once it has grown to the
// depth a user needs, pushing and popping do not allocate. It compacts when
// the popped prefix is at least half of the array, so a queue that never
// empties does not grow without bound.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) len() int { return len(q.items) - q.head }

func (q *fifo[T]) push(v T) {
	if q.head > 0 && len(q.items) == cap(q.items) && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, v)
}

func (q *fifo[T]) peek() (v T, ok bool) {
	if q.head == len(q.items) {
		return v, false
	}
	return q.items[q.head], true
}

func (q *fifo[T]) pop() (v T, ok bool) {
	if q.head == len(q.items) {
		return v, false
	}
	v = q.items[q.head]
	var zero T
	q.items[q.head] = zero
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return v, true
}

// rxQueue is a Conn's FIFO of received packets and what they are charged.
type rxQueue struct {
	fifo[*rxBuf]
	bytes int // sum of the queued packets' charges
}

func (q *rxQueue) push(b *rxBuf) {
	q.fifo.push(b)
	q.bytes += b.charge
}

func (q *rxQueue) pop() *rxBuf {
	b, ok := q.fifo.pop()
	if !ok {
		return nil
	}
	q.bytes -= b.charge
	return b
}

// drain frees every queued packet and returns the charge released.
func (q *rxQueue) drain() int {
	n := q.bytes
	for b := q.pop(); b != nil; b = q.pop() {
		b.free()
	}
	return n
}
