package proto

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// seedPackets returns the §1.11 vectors as whole M packets and as N packets.
func seedPackets(t testing.TB, enc Encoding) [][]byte {
	var seeds [][]byte
	for _, v := range specVectors {
		if enc == EncodingM {
			seeds = append(seeds, unhex(t, v.hex))
			continue
		}
		p, err := AppendPacket(nil, EncodingN, v.id, v.msg, 0)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, p)
	}
	return seeds
}

// fuzzReader feeds data to a PacketReader and checks its invariants: it never
// panics, every packet it returns re-frames to the bytes it came from, and it
// ends with EOF, ErrUnexpectedEOF or a framing error.
func fuzzReader(t *testing.T, enc Encoding, data []byte) {
	r := NewPacketReader(bytes.NewReader(data), enc, 1<<16, nil)
	consumed := 0
	for {
		p, err := r.Next()
		if err != nil {
			var fe *FrameError
			if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &fe) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		frame := AppendPacketArgs(nil, enc, p.ID, p.Code, p.Args)
		if enc == EncodingN && !bytes.Equal(frame, data[consumed:consumed+p.Size]) {
			t.Fatalf("N packet does not re-frame to its bytes")
		}
		consumed += p.Size
		if m := New(p.Code); m != nil {
			if m.DecodeArgs(p.Args) == nil {
				if _, err := AppendPacket(nil, enc, p.ID, m, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func FuzzPacketReaderN(f *testing.F) {
	for _, s := range seedPackets(f, EncodingN) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzReader(t, EncodingN, data) })
}

func FuzzPacketReaderM(f *testing.F) {
	for _, s := range seedPackets(f, EncodingM) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzReader(t, EncodingM, data) })
}

// FuzzDecodeArgs decodes arbitrary args for any code. Whatever decodes must
// re-encode to args that decode to the same value.
func FuzzDecodeArgs(f *testing.F) {
	for _, s := range seedPackets(f, EncodingN) {
		p, _, _ := ParsePacket(s, EncodingN, 0)
		f.Add(p.Code, p.Args)
	}
	f.Fuzz(func(t *testing.T, code uint16, args []byte) {
		m, err := Decode(code, args)
		if err != nil {
			return
		}
		enc := m.AppendArgs(nil)
		m2, err := Decode(code, enc)
		if err != nil {
			t.Fatalf("re-encoded args do not decode: %v", err)
		}
		if !bytes.Equal(m2.AppendArgs(nil), enc) {
			t.Fatalf("encoding is not stable")
		}
	})
}
