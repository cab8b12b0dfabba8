package proto_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/neolink/neolink/proto"
)

// AskObject(oid=p64(1), at=None, before=p64(5)) on id 9, framed both ways.
// The M bytes are exactly what NEO/py master's Packet.encode() produces.
func ExampleAppendPacket() {
	req := &proto.AskObject{OID: 1, Before: proto.Some(proto.Tid(5))}

	m, err := proto.AppendPacket(nil, proto.EncodingM, 9, req, 0)
	if err != nil {
		panic(err)
	}
	n, err := proto.AppendPacket(nil, proto.EncodingN, 9, req, 0)
	if err != nil {
		panic(err)
	}
	fmt.Printf("M % x\n", m)
	fmt.Printf("N % x\n", n)

	// Output:
	// M 93 09 20 93 c4 08 00 00 00 00 00 00 00 01 c0 c4 08 00 00 00 00 00 00 00 05
	// N 00 00 00 09 00 20 00 00 00 16 93 c4 08 00 00 00 00 00 00 00 01 c0 c4 08 00 00 00 00 00 00 00 05
}

// A packet is parsed in two steps: ParsePacket finds its id, code and args
// without decoding them, and Decode turns the args into a message.
func ExampleDecode() {
	wire := []byte{
		0x93, 0x09, 0x20, // [9, 32, ...
		0x93,                                                       // args: (
		0xc4, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // oid = p64(1)
		0xc0,                                                       // at = None
		0xc4, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // before = p64(5) )]
	}
	p, ok, err := proto.ParsePacket(wire, proto.EncodingM, 0)
	if err != nil || !ok {
		panic(fmt.Sprint("incomplete or bad packet: ", err))
	}
	msg, err := proto.Decode(p.Code, p.Args)
	if err != nil {
		panic(err)
	}
	fmt.Printf("id %d, code %#04x (%s, a %v), %d bytes\n", p.ID, p.Code, proto.NameOf(p.Code), proto.KindOf(p.Code), p.Size)

	req := msg.(*proto.AskObject)
	_, hasAt := req.At.Get()
	before, _ := req.Before.Get()
	fmt.Printf("oid %v, at given: %v, before %v\n", req.OID, hasAt, before)

	answer, _ := proto.AnswerOf(p.Code)
	fmt.Printf("answered by %s (%#04x)\n", proto.NameOf(answer), answer)

	// Output:
	// id 9, code 0x0020 (AskObject, a request), 25 bytes
	// oid 0000000000000001, at given: false, before 0000000000000005
	// answered by AnswerObject (0x8020)
}

// The Error packet in both framings. Its code travels as a plain msgpack int
// and its message as bin.
func ExampleError() {
	e := proto.ProtocolError("connection closed")
	for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
		b, err := proto.AppendPacket(nil, enc, 3, e, 0)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%v % x\n", enc, b)
	}
	fmt.Println(e)
	fmt.Println(errors.Is(e, proto.ProtocolError("")))

	// Output:
	// N 00 00 00 03 80 00 00 00 00 15 92 06 c4 11 63 6f 6e 6e 65 63 74 69 6f 6e 20 63 6c 6f 73 65 64
	// M 93 03 cd 80 00 92 06 c4 11 63 6f 6e 6e 65 63 74 69 6f 6e 20 63 6c 6f 73 65 64
	// PROTOCOL_ERROR: connection closed
	// true
}

// A PacketReader splits a byte stream into packets and routes on (id, code)
// without decoding; Args alias its buffer until the next call to Next.
func ExamplePacketReader() {
	var stream []byte
	stream, _ = proto.AppendPacket(stream, proto.EncodingN, 1, &proto.Ping{}, 0)
	stream, _ = proto.AppendPacket(stream, proto.EncodingN, 1, &proto.Pong{}, 0)
	stream, _ = proto.AppendPacket(stream, proto.EncodingN, 2, proto.Ack("done"), 0)

	r := proto.NewPacketReader(bytes.NewReader(stream), proto.EncodingN, 0, nil)
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("id %d %-5s answer=%v args % x\n", p.ID, proto.NameOf(p.Code), proto.IsAnswer(p.Code), p.Args)
	}

	// Output:
	// id 1 Ping  answer=false args 90
	// id 1 Pong  answer=true args 90
	// id 2 Error answer=true args 92 00 c4 04 64 6f 6e 65
}

// A writer batching packets into one buffer leaves large payloads out of it
// and writes buffer parts and payloads with one writev. Here the "socket" is
// a bytes.Buffer, which gets the parts one Write each.
func ExampleAppendPacketSG() {
	data := bytes.Repeat([]byte{0xab}, 100<<10)
	var seg proto.Segments
	buf := make([]byte, 0, 4096)
	buf, _ = proto.AppendPacketSG(buf, &seg, proto.EncodingN, 1, &proto.Ping{}, 0)
	buf, _ = proto.AppendPacketSG(buf, &seg, proto.EncodingN, 2, &proto.AnswerObject{OID: 7, Data: data}, 0)

	var sock bytes.Buffer
	fmt.Printf("%d bytes buffered, %d left in place, %d parts\n", len(buf), seg.Len(), len(seg.Buffers(buf)))
	if _, err := seg.WriteBuffers(&sock, buf); err != nil {
		panic(err)
	}
	seg.Reset() // with buf[:0], for the next batch; the payload may change again

	r := proto.NewPacketReader(&sock, proto.EncodingN, 0, nil)
	for range 2 {
		p, _ := r.Next()
		fmt.Printf("packet %d: %s, %d bytes\n", p.ID, proto.NameOf(p.Code), p.Size)
	}

	// Output:
	// 52 bytes buffered, 102400 left in place, 3 parts
	// packet 1: Ping, 11 bytes
	// packet 2: AnswerObject, 102441 bytes
}

// A reader that lends large packets gives each its own buffer: the message
// decoded with aliasing can be kept or queued without a copy, and the
// buffer goes back to the pool once the payload has been used.
func ExamplePacketReader_SetLendThreshold() {
	obj := &proto.AnswerObject{OID: 7, Data: bytes.Repeat([]byte{1}, 1<<20)}
	wire, _ := proto.AppendPacket(nil, proto.EncodingN, 3, obj, 0)

	r := proto.NewPacketReader(bytes.NewReader(wire), proto.EncodingN, 0, nil)
	r.SetLendThreshold(64 << 10)
	p, err := r.Next()
	if err != nil {
		panic(err)
	}
	var got proto.AnswerObject
	if err := got.DecodeArgsAlias(p.Args); err != nil {
		panic(err)
	}
	fmt.Printf("lent: %v, %d bytes of data for oid %v\n", p.Lent != nil, len(got.Data), got.OID)

	kept := got.Clone() // a copy that outlives the buffer
	proto.Recycle(p.Lent)
	fmt.Println(len(kept.Data))

	// Output:
	// lent: true, 1048576 bytes of data for oid 0000000000000007
	// 1048576
}
