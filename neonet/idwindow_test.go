package neonet

import (
	"math/rand/v2"
	"testing"
)

// TestIDWindowModel checks idWindow against an exact model: within the
// window an id is seen iff it was marked; ids above the top are new; ids
// below the window are taken as seen. Ids start near 2³² to cover wrap-around.
func TestIDWindowModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var w idWindow
	marked := map[uint32]bool{}
	next := uint32(0xffff_fff1) // odd ids, wrapping soon
	var mtop uint32             // highest id marked
	for i := range 200_000 {
		var id uint32
		switch r := rng.IntN(10); {
		case r < 6: // the peer's next id, sometimes skipping a few
			next += 2 * uint32(1+rng.IntN(3))
			id = next
		case r < 9: // an older id, possibly reopened out of order
			id = next - 2*uint32(rng.IntN(2*windowSize))
		default: // a large jump
			next += 2 * uint32(rng.IntN(3*windowSize))
			id = next
		}
		want := false
		if len(marked) > 0 {
			k := int64(int32(mtop-id)) / 2
			want = k >= windowSize || (k >= 0 && marked[id])
		}
		if got := w.seen(id); got != want {
			t.Fatalf("op %d: seen(%#x) = %v, want %v", i, id, got, want)
		}
		if rng.IntN(2) == 0 {
			w.mark(id)
			k := int64(int32(mtop-id)) / 2
			if len(marked) == 0 || k < 0 {
				mtop = id
			}
			if len(marked) == 0 || k < windowSize {
				marked[id] = true
			}
		}
		// The model forgets what fell out of the window.
		if len(marked) > 4*windowSize {
			for m := range marked {
				if int64(int32(mtop-m))/2 >= windowSize {
					delete(marked, m)
				}
			}
		}
		if w.bits != nil && w.top != mtop {
			t.Fatalf("top %#x, model %#x", w.top, mtop)
		}
	}
}

func BenchmarkIDWindowNext(b *testing.B) {
	var w idWindow
	id := uint32(1)
	for b.Loop() {
		if !w.seen(id) {
			w.mark(id)
		}
		id += 2
	}
}
