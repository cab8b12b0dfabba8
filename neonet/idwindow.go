package neonet

// idWindow remembers which peer-opened connection ids have been seen, so that
// a late packet for a closed connection gets "connection closed" instead of
// opening a new one. It needs no timer and a fixed 4 KiB per link.
//
// A peer allocates its ids in increasing order (+2, wrapping mod 2³²), but
// the first packets of its connections may arrive out of order when several
// goroutines open connections at once. So, as with IPsec's anti-replay
// window, we keep the highest id seen and a bitmap of the windowSize ids
// below it: an id above the highest is new, an id in the window is new only
// if its bit is clear, and an id below the window is taken as long closed.
// Comparisons use serial-number arithmetic (RFC 1982), so wrap-around works.
type idWindow struct {
	top  uint32 // highest id seen
	init bool   // whether any id was seen
	bits [windowSize / 64]uint64
}

// windowSize is in ids of one parity; it covers 65536 consecutive id values.
// A peer that opens more connections than that before it first uses the
// oldest of them would see that one refused as "connection closed".
const windowSize = 32768

// offset returns how many ids (of one parity) id is below top; negative if above.
func (w *idWindow) offset(id uint32) int64 { return int64(int32(w.top-id)) / 2 }

// seen reports whether id was seen before (or is too old to tell).
func (w *idWindow) seen(id uint32) bool {
	if !w.init {
		return false
	}
	k := w.offset(id)
	switch {
	case k < 0:
		return false
	case k >= windowSize:
		return true
	}
	return w.bits[k/64]&(1<<(k%64)) != 0
}

// mark records id as seen.
func (w *idWindow) mark(id uint32) {
	if !w.init {
		w.init, w.top = true, id
		w.bits[0] = 1
		return
	}
	k := w.offset(id)
	if k < 0 {
		w.shift(-k)
		w.top = id
		k = 0
	}
	if k < windowSize {
		w.bits[k/64] |= 1 << (k % 64)
	}
}

// shift moves every bit n positions up (older), dropping those past the window.
func (w *idWindow) shift(n int64) {
	if n >= windowSize {
		w.bits = [windowSize / 64]uint64{}
		return
	}
	words, bits := int(n/64), uint(n%64)
	for i := len(w.bits) - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = w.bits[j] << bits
			if bits > 0 && j > 0 {
				v |= w.bits[j-1] >> (64 - bits)
			}
		}
		w.bits[i] = v
	}
}
