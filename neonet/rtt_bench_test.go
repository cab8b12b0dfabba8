package neonet

import (
	"io"
	"testing"

	"github.com/neolink/neolink/proto"
)

// BenchmarkTCPDirect is the floor: a 32-byte ping-pong over TCP loopback
// with the server reading and writing in one goroutine.
func BenchmarkTCPDirect(b *testing.B) {
	a, s := socketPair(b, "tcp", "127.0.0.1:0")
	defer a.Close()
	defer s.Close()
	go func() {
		buf := make([]byte, 32)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(a, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAsk(b *testing.B, tr transport, enc proto.Encoding) {
	la, lb := linkPair(b, tr, enc, nil)
	go func() {
		c, err := lb.Accept()
		if err != nil {
			return
		}
		var req proto.AskObject
		ans := &proto.AnswerObject{Serial: 1, Data: make([]byte, 32)}
		for {
			if _, err := c.Expect(&req); err != nil {
				return
			}
			ans.OID = req.OID
			if err := c.Send(ans); err != nil {
				return
			}
		}
	}()
	c, _ := la.NewConn()
	req := &proto.AskObject{OID: 1}
	var resp proto.AnswerObject
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req.OID = proto.Oid(i)
		if err := c.Ask(req, &resp); err != nil {
			b.Fatal(err)
		}
		if resp.OID != req.OID || len(resp.Data) != 32 {
			b.Fatal("bad answer")
		}
	}
}

func benchAsk1(b *testing.B, tr transport, enc proto.Encoding) {
	la, lb := linkPair(b, tr, enc, nil)
	go func() {
		ans := &proto.AnswerObject{Serial: 1, Data: make([]byte, 32)}
		for {
			req, err := lb.Recv1()
			if err != nil {
				return
			}
			ans.OID = req.Msg.(*proto.AskObject).OID
			req.Reply(ans)
			req.Close()
		}
	}()
	req := &proto.AskObject{OID: 1}
	var resp proto.AnswerObject
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req.OID = proto.Oid(i)
		if err := la.Ask1(req, &resp); err != nil {
			b.Fatal(err)
		}
		if resp.OID != req.OID {
			b.Fatal("bad answer")
		}
	}
}

func BenchmarkLinkAsk(b *testing.B) {
	for _, enc := range encodings {
		b.Run("tcp/"+enc.String(), func(b *testing.B) { benchAsk(b, transports[1], enc) })
	}
	b.Run("pipe/N", func(b *testing.B) { benchAsk(b, transports[0], proto.EncodingN) })
}

func BenchmarkLinkAsk1(b *testing.B) {
	for _, enc := range encodings {
		b.Run("tcp/"+enc.String(), func(b *testing.B) { benchAsk1(b, transports[1], enc) })
	}
}
