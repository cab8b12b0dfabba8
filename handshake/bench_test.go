package handshake

import (
	"context"
	"net"
	"testing"

	"github.com/neolink/neolink/proto"
)

// benchmarkHandshake measures one link opening over net.Pipe: a dialer with
// a fixed encoding against an auto-detecting listener, the usual pairing.
// The pipe's own cost is included, as it would be with any transport. The
// context can be cancelled, as a node's is, so the watch on it is included.
func benchmarkHandshake(b *testing.B, enc proto.Encoding) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		d, l := net.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := Accept(ctx, l, 0)
			done <- err
		}()
		if err := Dial(ctx, d, enc); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		d.Close()
		l.Close()
	}
}

func BenchmarkHandshakeN(b *testing.B) { benchmarkHandshake(b, proto.EncodingN) }
func BenchmarkHandshakeM(b *testing.B) { benchmarkHandshake(b, proto.EncodingM) }

// BenchmarkClassify is the cost of deciding on a complete handshake.
func BenchmarkClassify(b *testing.B) {
	in := Bytes(proto.EncodingN)
	b.ReportAllocs()
	for b.Loop() {
		if enc, _, err := Classify(in); enc != proto.EncodingN || err != nil {
			b.Fatal(enc, err)
		}
	}
}
