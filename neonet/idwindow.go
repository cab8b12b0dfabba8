package neonet

// idWindow remembers which peer-opened connection ids have been seen, so that
// a late packet for a closed connection gets "connection closed" instead of
// opening a new one. It needs no timer and 4 KiB per link, allocated when
// the peer opens its first connection (a link that only dials, or routes by
// the answer bit, never pays it).
//
// A peer allocates its ids in increasing order (+2, wrapping mod 2³²), but
// the first packets of its connections may arrive out of order when several
// goroutines open connections at once. So, as with IPsec's anti-replay
// window, we keep the highest id seen and a bitmap of the windowSize ids
// below it: an id above the highest is new, an id in the window is new only
// if its bit is clear, and an id below the window is taken as long closed.
// Comparisons use serial-number arithmetic (RFC 1982), so wrap-around works.
//
// The bitmap is circular: id's bit is at (id/2) mod windowSize. Moving the
// top up by n ids clears just the n slots that come back into the window,
// so the common case, the next id of the peer, costs O(1).
type idWindow struct {
	top  uint32                   // highest id seen
	bits *[windowSize / 64]uint64 // nil until an id is seen
}

// windowSize is in ids of one parity; it covers 65536 consecutive id values.
// A peer that opens more connections than that before it first uses the
// oldest of them would see that one refused as "connection closed".
const windowSize = 32768

// offset returns how many ids (of one parity) id is below top; negative if above.
func (w *idWindow) offset(id uint32) int64 { return int64(int32(w.top-id)) / 2 }

func slot(id uint32) uint32 { return (id >> 1) % windowSize }

func (w *idWindow) bit(id uint32) bool { s := slot(id); return w.bits[s/64]&(1<<(s%64)) != 0 }
func (w *idWindow) set(id uint32)      { s := slot(id); w.bits[s/64] |= 1 << (s % 64) }

// seen reports whether id was seen before (or is too old to tell).
func (w *idWindow) seen(id uint32) bool {
	if w.bits == nil {
		return false
	}
	k := w.offset(id)
	switch {
	case k < 0:
		return false
	case k >= windowSize:
		return true
	}
	return w.bit(id)
}

// mark records id as seen.
func (w *idWindow) mark(id uint32) {
	if w.bits == nil {
		w.bits, w.top = new([windowSize / 64]uint64), id
		w.set(id)
		return
	}
	k := w.offset(id)
	if k >= windowSize {
		return // long closed anyway
	}
	if k < 0 {
		w.advance(-k)
		w.top = id
	}
	w.set(id)
}

// advance moves the top up by n ids, clearing the slots they reuse.
func (w *idWindow) advance(n int64) {
	if n >= windowSize {
		*w.bits = [windowSize / 64]uint64{}
		return
	}
	for s := int64(slot(w.top)) + 1; n > 0; n-- {
		s %= windowSize
		if s%64 == 0 && n >= 64 {
			w.bits[s/64] = 0
			s += 64
			n -= 63
			continue
		}
		w.bits[s/64] &^= 1 << (s % 64)
		s++
	}
}
