package neonet

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// faultProxy forwards TCP connections between a client and a server on
// loopback, applying a fault to the bytes going one way.
type faultProxy struct {
	ln     net.Listener
	target string
	fault  fault
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	closed chan struct{}
}

// fault decides how the forwarder writes a chunk: it returns what to write
// (possibly altered), and whether to cut the connection after it.
type fault struct {
	name  string
	delay time.Duration // sleep before each chunk
	tiny  bool          // write one byte at a time
	after int           // bytes forwarded before cut/stall/garbage applies
	cut   bool
	stall bool
	junk  bool
}

func newFaultProxy(t *testing.T, target string, f fault) *faultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, fault: f, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.forward(s, c, p.fault) // client → server: faulty
		go p.forward(c, s, fault{}) // server → client: clean
	}
}

func (p *faultProxy) forward(dst, src net.Conn, f fault) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	sent := 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if f.after > 0 && sent+n > f.after && (f.cut || f.stall || f.junk) {
				chunk = chunk[:f.after-sent]
				dst.Write(chunk)
				switch {
				case f.cut:
					return
				case f.stall:
					<-p.closed
					return
				case f.junk:
					junk := make([]byte, 64)
					for i := range junk {
						junk[i] = byte(rng.Uint32())
					}
					dst.Write(junk)
					f.junk = false
					dst.Write(buf[len(chunk):n])
					sent += n
					continue
				}
			}
			if f.delay > 0 {
				time.Sleep(f.delay)
			}
			if f.tiny {
				for i := range chunk {
					if _, err := dst.Write(chunk[i : i+1]); err != nil {
						return
					}
				}
			} else if _, err := dst.Write(chunk); err != nil {
				return
			}
			sent += n
		}
		if err != nil {
			return
		}
	}
}

func (p *faultProxy) close() {
	select {
	case <-p.closed:
		return
	default:
	}
	close(p.closed)
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestFaults runs asks through every fault. Whatever the fault, every call
// returns within its deadline, nothing panics or leaks, and memory stays
// bounded; faults that only slow or split the stream lose nothing.
func TestFaults(t *testing.T) {
	leakCheck(t)
	faults := []struct {
		f        fault
		lossless bool
	}{
		{fault{name: "delay", delay: time.Millisecond}, true},
		{fault{name: "tiny-writes", tiny: true}, true},
		{fault{name: "cut-mid-packet", after: 6 + 10 + 3, cut: true}, false},
		{fault{name: "stall", after: 6 + 200, stall: true}, false},
		{fault{name: "garbage", after: 6 + 100, junk: true}, false},
	}
	for _, enc := range encodings {
		for _, fc := range faults {
			t.Run(enc.String()+"/"+fc.f.name, func(t *testing.T) {
				ll := listenObjects(t, DefaultConfig())
				proxy := newFaultProxy(t, ll.Addr().String(), fc.f)
				cfg := DefaultConfig()
				cfg.Encoding = enc
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				link, err := DialLink(ctx, "tcp", proxy.ln.Addr().String(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer link.Close()

				const workers, asks = 8, 25
				var wg sync.WaitGroup
				var mu sync.Mutex
				ok, failed := 0, 0
				for w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c, err := link.NewConn()
						if err != nil {
							mu.Lock()
							failed += asks
							mu.Unlock()
							return
						}
						defer c.Close()
						for i := range asks {
							actx, acancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
							var r proto.AnswerObject
							oid := proto.Oid(w*1000 + i)
							err := c.AskContext(actx, &proto.AskObject{OID: oid}, &r)
							acancel()
							mu.Lock()
							if err == nil && r.OID == oid {
								ok++
							} else {
								failed++
							}
							mu.Unlock()
							if err != nil {
								return // stalled or down: the rest would fail the same way
							}
						}
					}()
				}
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(20 * time.Second):
					t.Fatal("calls still blocked under the fault")
				}
				if fc.lossless && (failed > 0 || ok != workers*asks) {
					t.Fatalf("lossless fault: %d ok, %d failed", ok, failed)
				}
				if !fc.lossless && failed == 0 {
					t.Fatalf("fault %s had no effect", fc.f.name)
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > 512<<20 {
					t.Fatalf("heap %d MiB under fault", ms.HeapAlloc>>20)
				}
				// Closing ends every call still pending, even one with no deadline.
				c, err := link.NewConn()
				blockedAsk := make(chan error, 1)
				if err == nil {
					go func() { blockedAsk <- c.Ask(&proto.AskObject{OID: 1}, &proto.AnswerObject{}) }()
				} else {
					blockedAsk <- err
				}
				time.Sleep(10 * time.Millisecond)
				link.Close()
				select {
				case <-blockedAsk:
				case <-time.After(5 * time.Second):
					t.Fatal("Close did not end a blocked Ask")
				}
				_, err = link.NewConn()
				if !errors.Is(err, ErrLinkClosed) && !errors.Is(err, ErrLinkDown) {
					t.Fatalf("after close: %v", err)
				}
			})
		}
	}
}
