package proto

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// TestPacketReaderLend reads small and large packets through readers that
// split the stream differently. Large packets come out lent, their args
// stay valid after the reader has moved on, and the reader is back on its
// own buffer after each, which they did not grow.
func TestPacketReaderLend(t *testing.T) {
	sizes := []int{10, 100 << 10, 0, 1 << 20, 17 << 10, 40 << 10, 5}
	const lendAt = 32 << 10
	for _, enc := range []Encoding{EncodingN, EncodingM} {
		var stream []byte
		var want [][]byte
		for i, size := range sizes {
			m := &AnswerObject{OID: Oid(i), Checksum: make([]byte, 20), Data: bytes.Repeat([]byte{byte(i + 1)}, size), DataSerial: Some(Tid(i))}
			want = append(want, m.AppendArgs(nil))
			var err error
			if stream, err = AppendPacket(stream, enc, uint32(i), m, 0); err != nil {
				t.Fatal(err)
			}
		}
		wrappers := map[string]func(io.Reader) io.Reader{
			"whole":    func(r io.Reader) io.Reader { return r },
			"half":     iotest.HalfReader,
			"data-err": iotest.DataErrReader,
		}
		for name, wrap := range wrappers {
			r := NewPacketReader(wrap(bytes.NewReader(stream)), enc, 0, nil)
			r.SetLendThreshold(lendAt)
			var kept []Packet
			for i := range sizes {
				before := len(r.buf)
				p, err := r.Next()
				if err != nil {
					t.Fatalf("%v/%s: packet %d: %v", enc, name, i, err)
				}
				if (p.Lent != nil) != (p.Size >= lendAt) {
					t.Errorf("%v/%s: packet %d of %d bytes: Lent=%v", enc, name, i, p.Size, p.Lent)
				}
				if !bytes.Equal(p.Args, want[i]) {
					t.Fatalf("%v/%s: packet %d args differ", enc, name, i)
				}
				// A lent packet leaves the reader's own buffer as it was;
				// one below the threshold may grow it, up to twice that.
				if p.Lent != nil && len(r.buf) != before || len(r.buf) >= 2*lendAt || r.home != nil {
					t.Errorf("%v/%s: after packet %d the buffer is %d bytes, was %d (lending %v)", enc, name, i, len(r.buf), before, r.home != nil)
				}
				if p.Lent != nil {
					kept = append(kept, p)
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("%v/%s: got %v at the end, want EOF", enc, name, err)
			}
			for _, p := range kept {
				if !bytes.Equal(p.Args, want[p.ID]) {
					t.Errorf("%v/%s: lent packet %d changed after the reader moved on", enc, name, p.ID)
				}
			}
		}
	}
}

// TestPacketReaderLendOff: without a threshold nothing is lent, and the
// buffer grown for a large packet is kept for the next one, as before.
func TestPacketReaderLendOff(t *testing.T) {
	m := &AnswerObject{Data: make([]byte, 100<<10)}
	stream, _ := AppendPacket(nil, EncodingN, 1, m, 0)
	stream, _ = AppendPacket(stream, EncodingN, 2, m, 0)
	r := NewPacketReader(bytes.NewReader(stream), EncodingN, 0, nil)
	for range 2 {
		p, err := r.Next()
		if err != nil || p.Lent != nil {
			t.Fatalf("got lent=%v, %v", p.Lent != nil, err)
		}
		if len(r.buf) < 100<<10 {
			t.Fatalf("buffer %d bytes", len(r.buf))
		}
	}
}

// TestPacketReaderLendAnnounced: a header announcing far more than arrives
// costs a bounded buffer, not the announced size.
func TestPacketReaderLendAnnounced(t *testing.T) {
	hdr := AppendPacketArgs(nil, EncodingN, 1, 0x8020, nil)
	hdr[9] = 0
	hdr[6] = 0x03 // 48 MiB of args announced
	r := NewPacketReader(io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(make([]byte, 100))), EncodingN, 0, nil)
	r.SetLendThreshold(64 << 10)
	if _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v", err)
	}
	if len(r.buf) > (lendInitial+lendSlack)*5/4 {
		t.Fatalf("buffer of %d bytes for 110 bytes received", len(r.buf))
	}
}

// TestLendClasses: a buffer from class c is at least the size asked for and
// at most 25% larger, and a buffer of a class's size goes back to it.
func TestLendClasses(t *testing.T) {
	prev := 0
	for size := 1; size <= MaxPacketSize+maxHeaderSizeM; size += 1 + size/97 {
		class, classSize, ok := lendClassCeil(size)
		if !ok {
			t.Fatalf("size %d has no class", size)
		}
		if classSize < size || size > 16<<10 && classSize > size+size/4 || class < prev {
			t.Fatalf("size %d: class %d of %d bytes (previous class %d)", size, class, classSize, prev)
		}
		if back, ok := lendClassFloor(classSize); !ok || back != class {
			t.Fatalf("class %d of %d bytes: floor class %d, %v", class, classSize, back, ok)
		}
		if back, ok := lendClassFloor(classSize + 1); !ok || back != class {
			t.Fatalf("capacity %d: floor class %d, want %d", classSize+1, back, class)
		}
		prev = class
	}
	if _, ok := lendClassFloor(16<<10 - 1); ok {
		t.Error("a buffer below 16 KiB has a class")
	}
}
