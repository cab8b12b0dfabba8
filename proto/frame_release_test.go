package proto

import (
	"bytes"
	"io"
	"testing"
)

// An idle reader can give its buffer back and read on afterwards.
func TestPacketReaderRelease(t *testing.T) {
	for _, enc := range []Encoding{EncodingN, EncodingM} {
		var stream bytes.Buffer
		r := NewPacketReader(&stream, enc, 0, nil)
		for i := range 3 {
			b, err := AppendPacket(nil, enc, uint32(i), &Ping{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			stream.Write(b)
			p, err := r.Next()
			if err != nil || p.ID != uint32(i) {
				t.Fatalf("%v: packet %d: %v %v", enc, i, p.ID, err)
			}
			if !r.Release() {
				t.Fatalf("%v: nothing buffered, yet the buffer was kept", enc)
			}
			if r.buf != nil {
				t.Fatalf("%v: released reader still holds its buffer", enc)
			}
		}
		// With bytes pending, the buffer stays.
		b, _ := AppendPacket(nil, enc, 7, &Ping{}, 0)
		stream.Write(b[:len(b)-1])
		if _, err := r.Next(); err != io.ErrUnexpectedEOF {
			t.Fatalf("%v: truncated packet: %v", enc, err)
		}
		if r.Release() {
			t.Fatalf("%v: released a buffer holding a partial packet", enc)
		}
	}
}
