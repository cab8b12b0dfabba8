package neonet

import "sync"

// rxBuf holds one received packet copied out of the link's read buffer, for a
// Conn whose receiver is not the goroutine that read it.
type rxBuf struct {
	code uint16
	args []byte
}

// Buffers up to maxPooledBuf are recycled; larger ones are left to the GC so
// that one huge packet does not pin memory in the pool.
const maxPooledBuf = 64 << 10

var rxBufPool = sync.Pool{New: func() any { return new(rxBuf) }}

func newRxBuf(code uint16, args []byte) *rxBuf {
	b := rxBufPool.Get().(*rxBuf)
	b.code = code
	if cap(b.args) < len(args) {
		b.args = make([]byte, len(args), max(len(args), 512))
	}
	b.args = append(b.args[:0], args...)
	return b
}

func (b *rxBuf) free() {
	if cap(b.args) > maxPooledBuf {
		b.args = nil
	}
	rxBufPool.Put(b)
}

// rxQueue is a FIFO of received packets. It reuses its backing array, so a
// Conn that takes packets as they come does not allocate.
type rxQueue struct {
	items []*rxBuf
	head  int
	bytes int
}

func (q *rxQueue) len() int { return len(q.items) - q.head }

func (q *rxQueue) push(b *rxBuf) {
	if q.head > 0 && len(q.items) == cap(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, b)
	q.bytes += len(b.args)
}

func (q *rxQueue) pop() *rxBuf {
	if q.head == len(q.items) {
		return nil
	}
	b := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	q.bytes -= len(b.args)
	return b
}

// drain frees every queued packet and returns how many there were.
func (q *rxQueue) drain() int {
	n := 0
	for b := q.pop(); b != nil; b = q.pop() {
		b.free()
		n++
	}
	return n
}
