package proto_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/neolink/neolink/proto"
	"github.com/neolink/neolink/proto/prototest"
)

// Every proper prefix of valid args must fail to decode with an error, never
// a panic, and every prefix of a framed packet must parse as incomplete.
func TestTruncated(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, code := range proto.Codes() {
		m := prototest.New(rng, code)
		args := m.AppendArgs(nil)
		for n := range len(args) {
			if err := proto.New(code).DecodeArgs(args[:n]); err == nil {
				t.Fatalf("%s: prefix %d/%d decoded without error", proto.Name(m), n, len(args))
			}
		}
		for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
			pkt, _ := proto.AppendPacket(nil, enc, 7, m, 0)
			for n := range len(pkt) {
				if _, ok, err := proto.ParsePacket(pkt[:n], enc, 0); ok || err != nil {
					t.Fatalf("%s/%v: prefix %d/%d: ok=%v err=%v", proto.Name(m), enc, n, len(pkt), ok, err)
				}
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		code uint16
		args string // hex
		want string
	}{
		{"wrong arity", 32, "92 c4 08 0000000000000001 c0", "AskObject: array has 2 elements, want 3"},
		{"not an array", 2, "80", "Ping"},
		{"trailing", 2, "90 90", "trailing bytes"},
		{"short oid", 32, "93 c4 07 00000000000001 c0 c0", "AskObject.oid: 8-byte id has 7 bytes"},
		{"oid as str", 32, "93 a8 0000000000000001 c0 c0", "AskObject.oid"},
		{"wrong ext code", 37, "91 d4 03 01", "AskNodeList.node_type: enum ext code 3, want 4"},
		{"enum out of range", 37, "91 d4 04 09", "AskNodeList.node_type: enum ext 4: value 9 out of range"},
		{"enum not ext", 37, "91 01", "AskNodeList.node_type: want enum ext 4"},
		{"u32 overflow", 25, "91 cf 0000000100000000", "AskNewOIDs.num_oids: integer 4294967296 out of range"},
		{"uuid overflow", 0x8004, "91 ce 80000000", "AnswerPrimary.primary_uuid: node id 2147483648 out of int32 range"},
		{"huge list", 0x8021, "91 dd ffffffff", "AnswerTIDs.tid_list: array of 4294967295 elements in 0 bytes"},
		{"huge map", 0x800f, "91 df ffffffff", "AnswerLockedTransactions.tid_dict: map of 4294967295 entries"},
		{"nested path", 6, "92 cb 0000000000000000 91 95 d4 04 00 c0 c0 d4 03 07 c0", "NotifyNodeInformation.node_list[0].state: enum ext 3: value 7"},
		{"truncated", 0x8000, "92 06", "Error.message: truncated input"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := proto.Decode(tt.code, unhexT(t, tt.args))
			var de *proto.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want *DecodeError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.want)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Fatalf("decoding bad input allocated %d bytes", grew)
			}
		})
	}
	if _, err := proto.Decode(74, []byte{0x90}); !errors.Is(err, proto.ErrUnknownCode) {
		t.Errorf("unknown code: err = %v", err)
	}
}

func TestFrameErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		enc  proto.Encoding
		in   string
		want error
	}{
		{"N length over limit", proto.EncodingN, "00000001 0002 04000000", proto.ErrPacketTooBig},
		{"M bin over limit", proto.EncodingM, "93 01 02 91 c6 7fffffff", proto.ErrPacketTooBig},
		{"M not an array", proto.EncodingM, "a3 4e 45 4f", proto.ErrBadFrame},
		{"M array of 2", proto.EncodingM, "92 01 02", proto.ErrBadFrame},
		{"M args not array", proto.EncodingM, "93 01 02 c0", proto.ErrBadFrame},
		{"M code too big", proto.EncodingM, "93 01 ce 00010000 90", proto.ErrBadFrame},
		{"M invalid byte", proto.EncodingM, "93 01 02 91 c1", proto.ErrBadFrame},
		{"M too deep", proto.EncodingM, "93 01 02" + strings.Repeat(" 91", 40), proto.ErrBadFrame},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := proto.ParsePacket(unhexT(t, tt.in), tt.enc, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			r := proto.NewPacketReader(bytes.NewReader(unhexT(t, tt.in)), tt.enc, 0, nil)
			if _, err := r.Next(); !errors.Is(err, tt.want) {
				t.Fatalf("reader: err = %v, want %v", err, tt.want)
			}
			if _, err2 := r.Next(); !errors.Is(err2, tt.want) {
				t.Fatalf("reader error is not sticky: %v", err2)
			}
		})
	}
}

// A reader fed a packet that announces 60 MiB but is cut short must not
// buffer more than what arrived plus one read's worth.
func TestReaderNoGiantAllocation(t *testing.T) {
	hdr := binary.BigEndian.AppendUint32(nil, 1)
	hdr = binary.BigEndian.AppendUint16(hdr, 0x8020)
	hdr = binary.BigEndian.AppendUint32(hdr, 60<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := proto.NewPacketReader(bytes.NewReader(hdr), proto.EncodingN, 0, nil)
	_, err := r.Next()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want ErrUnexpectedEOF", err)
	}
	// Memory follows the bytes that arrived, not the announced size.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("allocated %d bytes", grew)
	}
	// Over the limit: nothing is allocated for the packet at all.
	binary.BigEndian.PutUint32(hdr[6:], 70<<20)
	runtime.ReadMemStats(&before)
	r = proto.NewPacketReader(bytes.NewReader(hdr), proto.EncodingN, 0, nil)
	_, err = r.Next()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, proto.ErrPacketTooBig) {
		t.Fatalf("err = %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("allocated %d bytes for a refused packet", grew)
	}
}

// The reader must deliver the same packets whatever the read boundaries:
// one byte at a time, and with the whole stream at once.
func TestReaderChunking(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
		var stream []byte
		var msgs []proto.Msg
		for range 300 {
			m := prototest.New(rng, proto.Codes()[rng.IntN(proto.NumMsgs)])
			if rng.IntN(20) == 0 {
				m = &proto.AnswerObject{Data: bytes.Repeat([]byte{7}, 100_000)}
			}
			msgs = append(msgs, m)
			stream, _ = proto.AppendPacket(stream, enc, uint32(len(msgs)), m, 0)
		}
		for _, r := range []io.Reader{bytes.NewReader(stream), iotest.OneByteReader(bytes.NewReader(stream)), iotest.HalfReader(bytes.NewReader(stream))} {
			pr := proto.NewPacketReader(r, enc, 0, nil)
			for i, m := range msgs {
				p, err := pr.Next()
				if err != nil {
					t.Fatalf("%v packet %d: %v", enc, i, err)
				}
				if p.ID != uint32(i+1) || p.Code != m.MsgCode() || !bytes.Equal(p.Args, m.AppendArgs(nil)) {
					t.Fatalf("%v packet %d: got id %d code %#x", enc, i, p.ID, p.Code)
				}
			}
			if _, err := pr.Next(); err != io.EOF {
				t.Fatalf("%v: at end: %v, want EOF", enc, err)
			}
		}
		// A stream cut inside a packet ends with ErrUnexpectedEOF.
		pr := proto.NewPacketReader(bytes.NewReader(stream[:len(stream)-1]), enc, 0, nil)
		var err error
		for err == nil {
			_, err = pr.Next()
		}
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("%v: cut stream: %v", enc, err)
		}
	}
}

func TestAppendPacketTooBig(t *testing.T) {
	m := &proto.AnswerObject{Data: make([]byte, 1000)}
	buf := []byte("prefix")
	out, err := proto.AppendPacket(buf, proto.EncodingN, 1, m, 500)
	if !errors.Is(err, proto.ErrPacketTooBig) || string(out) != "prefix" {
		t.Fatalf("err = %v, out = %q", err, out)
	}
}

// TestErrorPrefix: every error of the package, wrapped or not, reads
// "proto: ..." with the prefix exactly once.
func TestErrorPrefix(t *testing.T) {
	_, _, frameErr := proto.ParsePacket(unhexT(t, "00000001 0002 ffffffff"), proto.EncodingN, 0)
	_, _, badFrame := proto.ParsePacket(unhexT(t, "94 01 02 90 90"), proto.EncodingM, 0)
	_, tooBig := proto.AppendPacket(nil, proto.EncodingN, 1, &proto.AnswerObject{Data: make([]byte, 100)}, 50)
	_, decodeErr := proto.Decode(0x8000, unhexT(t, "92 06"))
	_, unknown := proto.Decode(0x7777, nil)
	_, encErr := proto.ParseEncoding("X")
	for _, err := range []error{frameErr, badFrame, tooBig, decodeErr, unknown, encErr, proto.ErrTruncated, proto.ErrTrailing, proto.ErrPacketTooBig, proto.ErrBadFrame} {
		if err == nil {
			t.Fatal("no error")
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "proto: ") || strings.Contains(msg, ": proto: ") {
			t.Errorf("%q", msg)
		}
	}
}
