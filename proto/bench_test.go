package proto

import (
	"bytes"
	"io"
	"net"
	"testing"
)

var benchMsgs = []struct {
	name string
	msg  Msg
}{
	{"AskObject", &AskObject{OID: 1, Before: Some[Tid](5)}},
	{"AnswerObject4K", &AnswerObject{OID: 1, Serial: 2, Checksum: make([]byte, 20), Data: bytes.Repeat([]byte{1}, 4096)}},
	{"RequestIdentification", &RequestIdentification{
		NodeType: Storage, UUID: Some[NodeID](7), Address: Some(Address{Host: "127.0.0.1", Port: 5000}),
		Name: "test", IDTimestamp: Some(1.5), Extra: []KV[string, Raw]{{Key: "new_nid", Value: Raw{0x90}}},
	}},
}

func BenchmarkEncode(b *testing.B) {
	for _, bm := range benchMsgs {
		for _, enc := range []Encoding{EncodingN, EncodingM} {
			b.Run(bm.name+"/"+enc.String(), func(b *testing.B) {
				buf := make([]byte, 0, 8192)
				b.ReportAllocs()
				for b.Loop() {
					buf, _ = AppendPacket(buf[:0], enc, 7, bm.msg, 0)
				}
				b.SetBytes(int64(len(buf)))
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bm := range benchMsgs {
		b.Run(bm.name, func(b *testing.B) {
			args := bm.msg.AppendArgs(nil)
			dst := New(bm.msg.MsgCode())
			b.SetBytes(int64(len(args)))
			b.ReportAllocs()
			for b.Loop() {
				if err := dst.DecodeArgs(args); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bm.name+"/fresh", func(b *testing.B) {
			args := bm.msg.AppendArgs(nil)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(bm.msg.MsgCode(), args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPacketReader(b *testing.B) {
	for _, enc := range []Encoding{EncodingN, EncodingM} {
		b.Run(enc.String(), func(b *testing.B) {
			var stream []byte
			for i := range 64 {
				stream, _ = AppendPacket(stream, enc, uint32(i), benchMsgs[0].msg, 0)
			}
			rd := bytes.NewReader(stream)
			r := NewPacketReader(rd, enc, 0, nil)
			b.SetBytes(int64(len(stream) / 64))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%64 == 0 {
					rd.Reset(stream)
				}
				if _, err := r.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAnswerObject1MiB compares the copying and the zero-copy paths for
// a 1 MiB object: encoding into one buffer against scatter-gather, decoding
// into the message's own Data against aliasing the input, and reading with
// a buffer the reader keeps against a lent one.
func BenchmarkAnswerObject1MiB(b *testing.B) {
	m := &AnswerObject{OID: 1, Serial: 2, Checksum: make([]byte, 20), Data: bytes.Repeat([]byte{1}, 1<<20), DataSerial: Some(Tid(3))}
	args := m.AppendArgs(nil)
	b.Run("encode/copy", func(b *testing.B) {
		buf := make([]byte, 0, 2<<20)
		b.SetBytes(int64(len(args)))
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = AppendPacket(buf[:0], EncodingN, 7, m, 0)
		}
	})
	b.Run("encode/sg", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		var seg Segments
		b.SetBytes(int64(len(args)))
		b.ReportAllocs()
		for b.Loop() {
			seg.Reset()
			buf, _ = AppendPacketSG(buf[:0], &seg, EncodingN, 7, m, 0)
			_ = seg.Buffers(buf)
		}
	})
	b.Run("decode/copy", func(b *testing.B) {
		var dst AnswerObject
		b.SetBytes(int64(len(args)))
		b.ReportAllocs()
		for b.Loop() {
			if err := dst.DecodeArgs(args); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/alias", func(b *testing.B) {
		var dst AnswerObject
		b.SetBytes(int64(len(args)))
		b.ReportAllocs()
		for b.Loop() {
			if err := dst.DecodeArgsAlias(args); err != nil {
				b.Fatal(err)
			}
		}
	})
	pkt, _ := AppendPacket(nil, EncodingN, 7, m, 0)
	read := func(b *testing.B, lendAt int, decode func(*AnswerObject, []byte) error, recycle bool) {
		src := bytes.NewReader(pkt)
		r := NewPacketReader(src, EncodingN, 0, nil)
		r.SetLendThreshold(lendAt)
		var dst AnswerObject
		b.SetBytes(int64(len(pkt)))
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(pkt)
			p, err := r.Next()
			if err != nil {
				b.Fatal(err)
			}
			if err := decode(&dst, p.Args); err != nil {
				b.Fatal(err)
			}
			if recycle {
				Recycle(p.Lent)
			}
		}
	}
	// The reader keeps the buffer it grew, and Data is a copy.
	b.Run("read+decode/copy", func(b *testing.B) { read(b, 0, (*AnswerObject).DecodeArgs, false) })
	// Each packet gets a new buffer the caller keeps, and Data points into it.
	b.Run("read+decode/lend-keep", func(b *testing.B) { read(b, 64<<10, (*AnswerObject).DecodeArgsAlias, false) })
	// Each packet gets a recycled buffer, given back once Data is used.
	b.Run("read+decode/lend-recycle", func(b *testing.B) { read(b, 64<<10, (*AnswerObject).DecodeArgsAlias, true) })
}

// BenchmarkWrite1MiB writes AnswerObject packets of 1 MiB to a TCP loopback
// connection (a goroutine drains the other end): encoding into one buffer
// then Write, against scatter-gather with net.Buffers (one writev, the
// payload read by the kernel from the message itself).
func BenchmarkWrite1MiB(b *testing.B) {
	m := &AnswerObject{OID: 1, Serial: 2, Checksum: make([]byte, 20), Data: bytes.Repeat([]byte{1}, 1<<20)}
	for _, mode := range []string{"copy", "sg"} {
		b.Run(mode, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			drained := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					_, err = io.Copy(io.Discard, c)
					c.Close()
				}
				drained <- err
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 2<<20)
			var seg Segments
			b.SetBytes(int64(len(m.Data)))
			b.ReportAllocs()
			for b.Loop() {
				if mode == "copy" {
					buf, _ = AppendPacket(buf[:0], EncodingN, 7, m, 0)
					_, err = c.Write(buf)
				} else {
					seg.Reset()
					buf, _ = AppendPacketSG(buf[:0], &seg, EncodingN, 7, m, 0)
					_, err = seg.WriteBuffers(c, buf)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			if err := <-drained; err != nil {
				b.Fatal(err)
			}
		})
	}
}
