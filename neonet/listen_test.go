package neonet

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// Silent sockets, more than the handshakes the old listener ran at once,
// must not lock a real client out: it links up at once, and the silent
// ones are dropped after FirstByteTimeout.
func TestListenerSilentSockets(t *testing.T) {
	leakCheck(t)
	var fails = make(chan error, 1000)
	cfg := DefaultConfig()
	cfg.OnHandshakeError = func(_ net.Addr, err error) { fails <- err }
	ll, err := ListenLink("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for range 300 {
		c, err := net.Dial("tcp", ll.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), FirstByteTimeout/2)
	defer cancel()
	start := time.Now()
	link, err := DialLink(ctx, "tcp", ll.Addr().String(), &Config{
		Encoding: proto.EncodingN, HandshakeTimeout: time.Second, MaxPacketSize: proto.MaxPacketSize,
		ConnRecvBuffer: 1 << 20, LinkRecvBuffer: 1 << 20, AcceptBacklog: 8, SendBuffer: 1 << 20,
	})
	if err != nil {
		t.Fatalf("dial behind 300 silent sockets: %v", err)
	}
	defer link.Close()
	sl, err := ll.AcceptContext(ctx)
	if err != nil {
		t.Fatalf("accept behind 300 silent sockets: %v (after %v)", err, time.Since(start))
	}
	sl.Close()
	// The silent ones fail on the first-byte deadline, not the full timeout.
	deadline := time.After(FirstByteTimeout + 3*time.Second)
	for n := 0; n < len(silent); n++ {
		select {
		case <-fails:
		case <-deadline:
			t.Fatalf("only %d of %d silent handshakes ended by the first-byte deadline", n, len(silent))
		}
	}
}
