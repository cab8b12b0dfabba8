package proto

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"unsafe"

	"github.com/tinylib/msgp/msgp"
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
		checkReframe(t, enc, p, data[consumed:consumed+p.Size])
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

// checkReframe checks that p, read from the bytes orig, frames back to them.
// N has one encoding of a header, so the bytes must be equal. M's header is
// msgpack, where the same id and code have several encodings (a small id as
// uint32, say): the args must be orig's tail, and orig's header must decode
// to p's id and code exactly, with nothing between it and the args.
func checkReframe(t *testing.T, enc Encoding, p Packet, orig []byte) {
	t.Helper()
	frame := AppendPacketArgs(nil, enc, p.ID, p.Code, p.Args)
	if enc == EncodingN {
		if !bytes.Equal(frame, orig) {
			t.Fatalf("N packet does not re-frame to its bytes:\n got %x\nwant %x", frame, orig)
		}
		return
	}
	if p.Size != len(orig) || !bytes.HasSuffix(orig, p.Args) {
		t.Fatalf("M packet of %d bytes: args are not the tail of its %d bytes", p.Size, len(orig))
	}
	hdr := orig[:len(orig)-len(p.Args)]
	n, o, err := msgp.ReadArrayHeaderBytes(hdr)
	var id uint32
	var code uint16
	if err == nil {
		id, o, err = msgp.ReadUint32Bytes(o)
	}
	if err == nil {
		code, o, err = msgp.ReadUint16Bytes(o)
	}
	if err != nil || n != 3 || len(o) != 0 || id != p.ID || code != p.Code {
		t.Fatalf("M header %x does not decode to id %d code %d: n=%d id=%d code=%d rest=%x err=%v", hdr, p.ID, p.Code, n, id, code, o, err)
	}
	q, ok, err := ParsePacket(frame, enc, 0)
	if err != nil || !ok || q.ID != p.ID || q.Code != p.Code || !bytes.Equal(q.Args, p.Args) || q.Size != len(frame) {
		t.Fatalf("M re-framing %x does not parse back: ok=%v err=%v", frame, ok, err)
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

// chunkReader returns its data in reads of random sizes, from one byte to
// all that fits, and now and then a timeout with no data, which a
// PacketReader must survive: Next returns it and the next call resumes.
type chunkReader struct {
	data []byte
	rng  *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	if c.rng.IntN(8) == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	n := len(p)
	switch c.rng.IntN(4) {
	case 0:
		n = 1
	case 1:
		n = 1 + c.rng.IntN(16)
	case 2:
		n = 1 + c.rng.IntN(max(len(p), 1))
	}
	n = copy(p, c.data[:min(n, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// within reports whether the bytes of s are inside buf.
func within(s, buf []byte) bool {
	if len(s) == 0 {
		return true
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= start && p+uintptr(len(s)) <= start+uintptr(len(buf))
}

type readResult struct {
	packets []Packet
	err     error
}

// readAllPackets reads r to its first error, keeping a copy of each packet's
// args, or for a lent packet the args themselves, which must stay valid.
func readAllPackets(t *testing.T, r *PacketReader, lendAt int) readResult {
	var res readResult
	for timeouts := 0; ; {
		p, err := r.Next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if timeouts++; timeouts > 1<<20 {
				t.Fatal("no progress through timeouts")
			}
			continue
		}
		if err != nil {
			res.err = err
			return res
		}
		if p.Lent != nil {
			if lendAt == 0 || p.Size < lendAt {
				t.Fatalf("packet of %d bytes lent with threshold %d", p.Size, lendAt)
			}
			if cap(p.Args) != len(p.Args) || !within(p.Args, p.Lent) {
				t.Fatalf("lent args have spare capacity or lie outside the lent buffer")
			}
			if len(res.packets)%2 == 0 {
				// Give every other buffer back, so that later packets
				// are read into recycled buffers with stale bytes.
				p.Args = bytes.Clone(p.Args)
				Recycle(p.Lent)
				p.Lent = nil
			}
		} else {
			p.Args = bytes.Clone(p.Args)
		}
		res.packets = append(res.packets, p)
	}
}

// fuzzChunked reads a stream at the real size limit twice: at once from a
// bytes.Reader, and through random short reads and timeouts, with part of it
// given as the reader's initial bytes and large packets lent past a random
// threshold. The same packets must come out, and the same final error.
//
// The stream is data between two copies of a packet of big*4 bytes, which
// grows the read buffer past its default size (and makes the reader lend):
// a fuzz input that large would make the fuzzer's minimisation crawl.
func fuzzChunked(t *testing.T, enc Encoding, data []byte, seed uint64, lend, big uint16) {
	stream := data
	if big > 0 {
		m := &AnswerObject{OID: Oid(big), Checksum: make([]byte, 20), Data: bytes.Repeat([]byte{byte(seed)}, int(big)*4), DataSerial: Some(Tid(3))}
		pkt, err := AppendPacket(nil, enc, uint32(seed), m, 0)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(append(pkt, data...), pkt...)
	}
	want := readAllPackets(t, NewPacketReader(bytes.NewReader(stream), enc, 0, nil), 0)

	rng := rand.New(rand.NewPCG(seed, uint64(lend)))
	split := rng.IntN(len(stream) + 1)
	if rng.IntN(2) == 0 {
		split = 0
	}
	r := NewPacketReader(&chunkReader{data: stream[split:], rng: rng}, enc, 0, stream[:split])
	lendAt := int(lend)
	r.SetLendThreshold(lendAt)
	got := readAllPackets(t, r, lendAt)

	if len(got.packets) != len(want.packets) {
		t.Fatalf("%d packets read in chunks, %d at once; errors %v / %v", len(got.packets), len(want.packets), got.err, want.err)
	}
	for i, p := range got.packets {
		w := want.packets[i]
		if p.ID != w.ID || p.Code != w.Code || p.Size != w.Size || !bytes.Equal(p.Args, w.Args) {
			t.Fatalf("packet %d differs: chunked %d/%d/%d %x, at once %d/%d/%d %x", i, p.ID, p.Code, p.Size, p.Args, w.ID, w.Code, w.Size, w.Args)
		}
	}
	if !sameEnd(got.err, want.err) {
		t.Fatalf("chunked read ended with %v, at once with %v", got.err, want.err)
	}
	if got.err == io.EOF && r.home != nil {
		t.Fatal("reader still lending at the end of the stream")
	}
}

// sameEnd reports whether two reads of one stream ended the same way.
func sameEnd(a, b error) bool {
	var fa, fb *FrameError
	switch {
	case errors.As(a, &fa) && errors.As(b, &fb):
		return fa.Offset == fb.Offset &&
			errors.Is(fa, ErrPacketTooBig) == errors.Is(fb, ErrPacketTooBig) &&
			errors.Is(fa, ErrBadFrame) == errors.Is(fb, ErrBadFrame)
	case fa != nil || fb != nil:
		return false
	}
	return a == b
}

// addChunkSeeds seeds with the spec's packets one by one and all in one
// stream, each without and with large packets around, lent or not.
func addChunkSeeds(f *testing.F, enc Encoding) {
	seeds := seedPackets(f, enc)
	var all []byte
	for _, s := range seeds {
		all = append(all, s...)
	}
	// Id and code in their widest msgpack int forms, valid but never sent
	// by NEO/py: a reader must wait for all of the header.
	wide := unhex(f, "dd 00000003 cf 0000000000000007 cf 0000000000000002 90")
	for i, s := range append(seeds, all, wide) {
		f.Add(s, uint64(i), uint16(0), uint16(0))
		f.Add(s, uint64(i), uint16(0), uint16(10<<10))
		f.Add(s, uint64(i), uint16(30<<10), uint16(10<<10))
		f.Add(s, uint64(i), uint16(100), uint16(3))
	}
}

func FuzzChunkedReaderN(f *testing.F) {
	addChunkSeeds(f, EncodingN)
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, lend, big uint16) {
		fuzzChunked(t, EncodingN, data, seed, lend, big)
	})
}

func FuzzChunkedReaderM(f *testing.F) {
	addChunkSeeds(f, EncodingM)
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, lend, big uint16) {
		fuzzChunked(t, EncodingM, data, seed, lend, big)
	})
}

// TestChunkedWideHeader: an M header may encode its id and code in any
// msgpack int form, up to 9 bytes each; a reader that has only part of such
// a header must wait for the rest, not call it malformed.
func TestChunkedWideHeader(t *testing.T) {
	wide := unhex(t, "dd 00000003 cf 0000000000000007 cf 0000000000000002 90")
	for seed := range uint64(64) {
		fuzzChunked(t, EncodingM, append(wide, 0x93, 0x01, 0x02, 0x90), seed, 0, 0)
	}
}
