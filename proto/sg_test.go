package proto_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"reflect"
	"testing"
	"unsafe"

	"github.com/kylelemons/godebug/pretty"

	"github.com/neolink/neolink/proto"
	"github.com/neolink/neolink/proto/prototest"
)

// TestAppendPacketSGEqual: for every message of the catalog with random
// values, in both framings and for several thresholds, scatter-gather output
// is AppendPacket's bytes once concatenated, also with several packets
// grouped in one buffer, as a writer batching packets does.
func TestAppendPacketSGEqual(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	thresholds := []int{1, 2, 8, 30, 0}
	var seg proto.Segments
	var buf []byte
	for _, code := range proto.Codes() {
		for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
			for _, th := range thresholds {
				seg.Reset()
				seg.Threshold = th
				buf = buf[:0]
				var want []byte
				for range 8 {
					m := prototest.New(rng, code)
					id := rng.Uint32()
					var err error
					if want, err = proto.AppendPacket(want, enc, id, m, 0); err != nil {
						t.Fatal(err)
					}
					if buf, err = proto.AppendPacketSG(buf, &seg, enc, id, m, 0); err != nil {
						t.Fatal(err)
					}
				}
				var got []byte
				for _, part := range seg.Buffers(buf) {
					if len(part) == 0 {
						t.Fatalf("%s/%v: empty part in Buffers", proto.NameOf(code), enc)
					}
					got = append(got, part...)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s/%v threshold %d: scatter-gather bytes differ\ngot  %x\nwant %x", proto.NameOf(code), enc, th, got, want)
				}
				if len(buf)+seg.Len() != len(want) {
					t.Fatalf("%s/%v: len(b) %d + Len %d != %d", proto.NameOf(code), enc, len(buf), seg.Len(), len(want))
				}
				if app := seg.AppendTo([]byte("x"), buf); !bytes.Equal(app[1:], want) || app[0] != 'x' {
					t.Fatalf("%s/%v: AppendTo differs", proto.NameOf(code), enc)
				}
			}
		}
	}
}

// TestAppendPacketSGNoCopy: a large bin is written from the message's own
// memory, and only the framing goes into the buffer.
func TestAppendPacketSGNoCopy(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 64<<10)
	m := &proto.AnswerObject{OID: 1, Serial: 2, Checksum: make([]byte, 20), Data: data}
	for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
		var seg proto.Segments
		b, err := proto.AppendPacketSG(nil, &seg, enc, 3, m, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 100 || seg.Count() != 1 || seg.Len() != len(data) {
			t.Fatalf("%v: buffer %d bytes, %d segments of %d bytes", enc, len(b), seg.Count(), seg.Len())
		}
		bufs := seg.Buffers(b)
		if len(bufs) != 3 || unsafe.SliceData(bufs[1]) != unsafe.SliceData(data) || len(bufs[1]) != len(data) {
			t.Fatalf("%v: the payload is not the message's own slice: %d parts", enc, len(bufs))
		}
		p, ok, err := proto.ParsePacket(seg.AppendTo(nil, b), enc, 0)
		if err != nil || !ok || p.ID != 3 || !bytes.Equal(p.Args, m.AppendArgs(nil)) {
			t.Fatalf("%v: packet does not parse back: ok=%v err=%v", enc, ok, err)
		}
	}
}

// TestAppendPacketSGTooBig: the limit counts the bytes left out, and a
// refused packet leaves both the buffer and the segments as they were.
func TestAppendPacketSGTooBig(t *testing.T) {
	small := &proto.AnswerObject{Data: make([]byte, 20<<10)}
	big := &proto.AnswerObject{Data: make([]byte, 40<<10)}
	for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
		var seg proto.Segments
		b, err := proto.AppendPacketSG(nil, &seg, enc, 1, small, 32<<10)
		if err != nil {
			t.Fatal(err)
		}
		n, count, ext := len(b), seg.Count(), seg.Len()
		b, err = proto.AppendPacketSG(b, &seg, enc, 2, big, 32<<10)
		if !errors.Is(err, proto.ErrPacketTooBig) {
			t.Fatalf("%v: got %v, want ErrPacketTooBig", enc, err)
		}
		if len(b) != n || seg.Count() != count || seg.Len() != ext {
			t.Fatalf("%v: refused packet left %d bytes, %d segments, %d external", enc, len(b)-n, seg.Count()-count, seg.Len()-ext)
		}
	}
}

// TestWriteBuffers writes scatter-gather packets to a TCP loopback
// connection, where net.Buffers uses writev, and checks the bytes received.
func TestWriteBuffers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		received <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	var seg proto.Segments
	var buf, want []byte
	for i := range 20 {
		m := &proto.AnswerObject{OID: proto.Oid(i), Data: make([]byte, rng.IntN(200<<10))}
		for j := range m.Data {
			m.Data[j] = byte(i + j)
		}
		want, _ = proto.AppendPacket(want, proto.EncodingN, uint32(i), m, 0)
		seg.Reset()
		buf, _ = proto.AppendPacketSG(buf[:0], &seg, proto.EncodingN, uint32(i), m, 0)
		buf, _ = proto.AppendPacketSG(buf, &seg, proto.EncodingN, uint32(i), &proto.Ping{}, 0)
		want, _ = proto.AppendPacket(want, proto.EncodingN, uint32(i), &proto.Ping{}, 0)
		n, err := seg.WriteBuffers(c, buf)
		if err != nil || int(n) != len(buf)+seg.Len() {
			t.Fatalf("wrote %d of %d bytes: %v", n, len(buf)+seg.Len(), err)
		}
	}
	c.Close()
	if got := <-received; !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes, not the %d AppendPacket gives", len(got), len(want))
	}
}

func TestAppendPacketSGAllocs(t *testing.T) {
	m := &proto.AnswerObject{Checksum: make([]byte, 20), Data: make([]byte, 1<<20)}
	ping := &proto.Ping{}
	var seg proto.Segments
	buf := make([]byte, 0, 4096)
	run := func() {
		seg.Reset()
		b, _ := proto.AppendPacketSG(buf[:0], &seg, proto.EncodingN, 1, m, 0)
		b, _ = proto.AppendPacketSG(b, &seg, proto.EncodingN, 2, ping, 0)
		b, _ = proto.AppendPacketSG(b, &seg, proto.EncodingN, 3, m, 0)
		if _, err := seg.WriteBuffers(io.Discard, b); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Errorf("steady-state scatter-gather encoding: %v allocs, want 0", n)
	}
}

// TestDecodeArgsAlias: an aliasing decode gives the same value as a copying
// one, its []byte fields point into the input, and a later copying decode
// into the same value never writes into that input.
func TestDecodeArgsAlias(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, code := range proto.Codes() {
		dst := proto.New(code)
		for range 20 {
			m := prototest.New(rng, code)
			args := m.AppendArgs(nil)
			if err := proto.DecodeArgsAlias(dst, args); err != nil {
				t.Fatal(err)
			}
			if diff := pretty.Compare(m, dst); diff != "" {
				t.Fatalf("%s (-sent +alias-decoded):\n%s", proto.Name(m), diff)
			}
			saved := bytes.Clone(args)
			other := prototest.New(rng, code)
			if err := dst.DecodeArgs(other.AppendArgs(nil)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(args, saved) {
				t.Fatalf("%s: a copying decode after an aliasing one wrote into the old input", proto.Name(m))
			}
			if !bytes.Equal(dst.AppendArgs(nil), other.AppendArgs(nil)) {
				t.Fatalf("%s: copying decode after aliasing differs", proto.Name(m))
			}
		}
	}
}

func TestDecodeArgsAliasShares(t *testing.T) {
	src := &proto.AnswerObject{Checksum: []byte("0123456789abcdefghij"), Data: bytes.Repeat([]byte{1}, 1000)}
	args := src.AppendArgs(nil)
	var m proto.AnswerObject
	if err := m.DecodeArgsAlias(args); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(args, src.Data)
	if i < 0 || unsafe.SliceData(m.Data) != &args[i] || cap(m.Data) != len(m.Data) {
		t.Fatal("Data does not alias the input with its capacity capped")
	}
	var c proto.AnswerObject
	if err := c.DecodeArgs(args); err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(c.Data) == &args[i] {
		t.Fatal("DecodeArgs aliases the input")
	}
	// A message without []byte fields decodes as with DecodeArgs.
	var ask proto.AskObject
	if err := proto.DecodeArgsAlias(&ask, (&proto.AskObject{OID: 9}).AppendArgs(nil)); err != nil || ask.OID != 9 {
		t.Fatalf("AskObject: %v, %+v", err, ask)
	}
}

// TestClone: a clone equals its source and shares no memory with it, nor
// with the input its source was alias-decoded from.
func TestClone(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, code := range proto.Codes() {
		src := proto.New(code)
		for range 20 {
			m := prototest.New(rng, code)
			args := m.AppendArgs(nil)
			want := bytes.Clone(args)
			if err := proto.DecodeArgsAlias(src, args); err != nil {
				t.Fatal(err)
			}
			c := proto.Clone(src)
			if diff := pretty.Compare(src, c); diff != "" {
				t.Fatalf("%s (-source +clone):\n%s", proto.Name(m), diff)
			}
			// Overwrite everything the source holds: its lists by decoding
			// another value into it, its aliased bytes through the input.
			if err := src.DecodeArgs(prototest.New(rng, code).AppendArgs(nil)); err != nil {
				t.Fatal(err)
			}
			for i := range args {
				args[i] = 0xc1
			}
			if got := c.AppendArgs(nil); !bytes.Equal(got, want) {
				t.Fatalf("%s: clone changed with its source", proto.Name(m))
			}
		}
	}
	if proto.Clone(&foreignMsg{}) != nil {
		t.Error("Clone of a type outside the catalog is not nil")
	}
}

type foreignMsg struct{ proto.Ping }

func (*foreignMsg) MsgCode() uint16 { return 2 }

// TestGeneratedVariants: exactly the messages holding a bin (a []byte other
// than Raw) have AppendArgsSG, and exactly those holding any []byte have
// DecodeArgsAlias, however deep the field.
func TestGeneratedVariants(t *testing.T) {
	raw := reflect.TypeFor[proto.Raw]()
	var holds func(reflect.Type, bool) bool
	holds = func(t reflect.Type, rawToo bool) bool {
		switch t.Kind() {
		case reflect.Slice:
			if t.Elem().Kind() == reflect.Uint8 {
				return rawToo || t != raw
			}
			return holds(t.Elem(), rawToo)
		case reflect.Struct:
			for i := range t.NumField() {
				if holds(t.Field(i).Type, rawToo) {
					return true
				}
			}
		}
		return false
	}
	sgs, aliases := 0, 0
	for _, code := range proto.Codes() {
		m := proto.New(code)
		typ := reflect.TypeOf(m).Elem()
		_, sg := m.(interface {
			AppendArgsSG([]byte, *proto.Segments) []byte
		})
		_, alias := m.(interface{ DecodeArgsAlias([]byte) error })
		if sg != holds(typ, false) || alias != holds(typ, true) {
			t.Errorf("%s: AppendArgsSG %v, DecodeArgsAlias %v", typ.Name(), sg, alias)
		}
		if sg {
			sgs++
		}
		if alias {
			aliases++
		}
	}
	if sgs == 0 || aliases <= sgs {
		t.Errorf("%d messages with AppendArgsSG, %d with DecodeArgsAlias", sgs, aliases)
	}
	t.Logf("%d messages with AppendArgsSG, %d with DecodeArgsAlias, of %d", sgs, aliases, proto.NumMsgs)
}
