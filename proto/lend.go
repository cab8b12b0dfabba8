package proto

import (
	"math/bits"
	"sync"
)

// A packet to lend gets a buffer of its announced size up to lendInitial (a
// 1 MiB payload and its framing fit), and grows from there as its bytes
// arrive, so that a header announcing 64 MiB does not cost 64 MiB at once.
// lendSlack leaves room for the small fields that follow an M packet's
// large bin, whose end is all the walker announces.
const (
	lendInitial = 1<<20 + 1<<10
	lendSlack   = 64
)

// SetLendThreshold makes the reader lend large packets: a packet of at least
// n bytes that is not already complete in the read-ahead buffer is read into
// a buffer of its own, which the reader gives away with the packet
// (Packet.Lent), and the reader goes on with its small read-ahead buffer. A
// caller can so keep a large packet, or queue it, without copying it, and the
// reader does not keep a buffer grown by one large packet. n <= 0 turns
// lending off, the default.
//
// Lending starts as soon as the packet is known to reach n bytes: from its
// header in N, from the size of a large bin (or n bytes buffered) in M. The
// buffer comes from those given back with Recycle when one fits, else it is
// allocated; a packet above 1 MiB gets its buffer grown as its bytes arrive.
// Lending pays when the lent buffers are recycled, or kept: without either,
// a new buffer per packet costs more than the copy it saves.
func (r *PacketReader) SetLendThreshold(n int) { r.lendAt = max(n, 0) }

// startLend moves the pending bytes of a packet to lend into a buffer of
// their own, keeping the reader's buffer as home.
func (r *PacketReader) startLend() {
	pending := r.end - r.start
	size := 2*pending + readMinSpace
	if r.need > 0 {
		size = max(pending+readMinSpace, min(r.need+lendSlack, max(lendInitial, 2*pending)))
	}
	size = min(size, r.limit+maxHeaderSizeM)
	nb := getLendBuf(size)
	copy(nb, r.buf[r.start:r.end])
	r.home, r.buf = r.buf, nb
	r.start, r.end = 0, pending
}

// endLend returns to the home buffer once the lent packet is consumed,
// taking along the few bytes read past its end (fill reads at most
// readMinSpace past the packet while lending, less than home holds).
func (r *PacketReader) endLend() {
	rest := r.buf[r.start:r.end]
	r.buf, r.home = r.home, nil
	r.start, r.end = 0, copy(r.buf, rest)
}

// Lent buffers are recycled by size class: four classes per power of two,
// from 16 KiB (4<<lendMinShift) to 112 MiB (7<<lendMaxShift), past the
// largest packet, so that a buffer is at most 25% larger than asked for.
const (
	lendMinShift = 12
	lendMaxShift = 24
	lendClasses  = (lendMaxShift - lendMinShift + 1) * 4
)

var (
	lendPools [lendClasses]sync.Pool // of *lendHolder
	// holders carries the slices in and out of lendPools without an
	// allocation per Put, which a []byte stored as an interface would cost.
	holders sync.Pool
)

type lendHolder struct{ b []byte }

// lendClassCeil returns the smallest class of at least size bytes, and its
// size; ok is false for sizes beyond the last class.
func lendClassCeil(size int) (class, classSize int, ok bool) {
	if size <= 4<<lendMinShift {
		return 0, 4 << lendMinShift, true
	}
	shift := bits.Len(uint(size-1)) - 3 // 4<<shift < size <= 8<<shift
	q := (size + 1<<shift - 1) >> shift // 5..8
	if q == 8 {
		q, shift = 4, shift+1
	}
	class = (shift-lendMinShift)*4 + q - 4
	return class, q << shift, class < lendClasses
}

// lendClassFloor returns the largest class a buffer of capacity c can serve.
func lendClassFloor(c int) (class int, ok bool) {
	if c < 4<<lendMinShift {
		return 0, false
	}
	shift := bits.Len(uint(c)) - 3 // 4<<shift <= c < 8<<shift
	class = (shift-lendMinShift)*4 + c>>shift - 4
	return min(class, lendClasses-1), true
}

// getLendBuf returns a buffer of at least size bytes, recycled if possible.
func getLendBuf(size int) []byte {
	class, classSize, ok := lendClassCeil(size)
	if !ok {
		return make([]byte, size)
	}
	if h, _ := lendPools[class].Get().(*lendHolder); h != nil {
		b := h.b
		h.b = nil
		holders.Put(h)
		return b[:cap(b)]
	}
	return make([]byte, classSize)
}

// Recycle gives a buffer back for reuse by the lent packets of any
// PacketReader: typically Packet.Lent, once nothing refers to it any more
// (neither the packet's Args nor a message decoded from them with
// DecodeArgsAlias). The caller must not use buf after the call. Buffers
// smaller than 16 KiB are ignored. Recycled buffers are dropped by the
// garbage collector when unused, as with sync.Pool. Safe for concurrent use.
func Recycle(buf []byte) {
	class, ok := lendClassFloor(cap(buf))
	if !ok {
		return
	}
	h, _ := holders.Get().(*lendHolder)
	if h == nil {
		h = new(lendHolder)
	}
	h.b = buf[:0]
	lendPools[class].Put(h)
}
