package neonet

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// A peer trickling a large packet cannot hold the link forever: with
// PacketTimeout set, the link goes down; whole packets arriving steadily
// do not trip it.
func TestPacketTimeout(t *testing.T) {
	leakCheck(t)
	cfg := DefaultConfig()
	cfg.PacketTimeout = 200 * time.Millisecond
	l, p := rawPair(t, transports[1], proto.EncodingN, Listener, cfg)
	defer l.Close()
	// Steady small packets for longer than the timeout: the link stays up.
	go l.Accept()
	for i := range 20 {
		p.send(uint32(2*i+1), &proto.Ping{})
		time.Sleep(20 * time.Millisecond)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("steady traffic tripped the packet timeout: %v", err)
	}
	// A 1 MiB packet, one byte every 10 ms.
	var hdr [proto.HeaderSizeN]byte
	binary.BigEndian.PutUint32(hdr[0:], 99)
	binary.BigEndian.PutUint16(hdr[4:], (&proto.AskStoreObject{}).MsgCode())
	binary.BigEndian.PutUint32(hdr[6:], 1<<20)
	p.write(hdr[:])
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				if _, err := p.nc.Write([]byte{0x90}); err != nil {
					return
				}
			}
		}
	}()
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a trickled packet kept the link up")
	}
	if err := l.Err(); !errors.Is(err, ErrPacketTimeout) || !errors.Is(err, ErrLinkDown) {
		t.Fatalf("err = %v, want ErrPacketTimeout", err)
	}
}
