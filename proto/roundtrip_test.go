package proto_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/kylelemons/godebug/pretty"

	"github.com/neolink/neolink/proto"
	"github.com/neolink/neolink/proto/prototest"
)

// TestRoundTripAll encodes random values of every catalog type in both
// framings, then parses, decodes, compares and re-encodes them.
func TestRoundTripAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, code := range proto.Codes() {
		for i := range 40 {
			m := prototest.New(rng, code)
			for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
				id := rng.Uint32()
				pkt, err := proto.AppendPacket(nil, enc, id, m, 0)
				if err != nil {
					t.Fatal(err)
				}
				if bound := m.ArgsSize(); len(pkt) > bound+10 {
					t.Fatalf("%s: packet %d bytes exceeds ArgsSize bound %d", proto.Name(m), len(pkt), bound)
				}
				p, ok, err := proto.ParsePacket(pkt, enc, 0)
				if err != nil || !ok || p.ID != id || p.Code != code || p.Size != len(pkt) {
					t.Fatalf("%s/%v #%d: parse ok=%v err=%v %+v", proto.Name(m), enc, i, ok, err, p)
				}
				got, err := proto.Decode(p.Code, p.Args)
				if err != nil {
					t.Fatalf("%s/%v #%d: %v\nargs % x", proto.Name(m), enc, i, err, p.Args)
				}
				if diff := pretty.Compare(m, got); diff != "" {
					t.Fatalf("%s/%v #%d (-sent +decoded):\n%s", proto.Name(m), enc, i, diff)
				}
				again, _ := proto.AppendPacket(nil, enc, id, got, 0)
				if !bytes.Equal(again, pkt) {
					t.Fatalf("%s/%v #%d: re-encoding differs", proto.Name(m), enc, i)
				}
			}
		}
	}
}

// TestDecodeReuse checks that decoding into a used value overwrites every
// field, including optionals going absent and lists shrinking.
func TestDecodeReuse(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, code := range proto.Codes() {
		dst := proto.New(code)
		for range 20 {
			m := prototest.New(rng, code)
			if err := dst.DecodeArgs(m.AppendArgs(nil)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dst.AppendArgs(nil), m.AppendArgs(nil)) {
				t.Fatalf("%s: reused value re-encodes differently", proto.Name(m))
			}
		}
	}
}

func TestDecodeSteadyStateAllocs(t *testing.T) {
	src := &proto.AnswerObject{OID: 1, Serial: 2, Checksum: make([]byte, 20), Data: make([]byte, 4096)}
	args := src.AppendArgs(nil)
	var dst proto.AnswerObject
	if err := dst.DecodeArgs(args); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = dst.DecodeArgs(args) }); n != 0 {
		t.Errorf("AnswerObject decode into reused value: %v allocs, want 0", n)
	}
	req := &proto.RequestIdentification{NodeType: proto.Client, Name: "cluster"}
	rargs := req.AppendArgs(nil)
	var rdst proto.RequestIdentification
	_ = rdst.DecodeArgs(rargs)
	if n := testing.AllocsPerRun(100, func() { _ = rdst.DecodeArgs(rargs) }); n != 0 {
		t.Errorf("RequestIdentification decode into reused value: %v allocs, want 0", n)
	}
	buf := make([]byte, 0, 8192)
	if n := testing.AllocsPerRun(100, func() { _, _ = proto.AppendPacket(buf, proto.EncodingN, 1, src, 0) }); n != 0 {
		t.Errorf("AppendPacket: %v allocs, want 0", n)
	}
}
