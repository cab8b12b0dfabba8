package neonet

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// TestSoak hammers links with random operations for NEOLINK_SOAK (a
// duration; `make soak` sets it) under the race detector, and asserts that
// no answer is lost and no goroutine is leaked. It is not part of make test.
func TestSoak(t *testing.T) {
	d := os.Getenv("NEOLINK_SOAK")
	if d == "" {
		t.Skip("opt-in: set NEOLINK_SOAK to a duration, e.g. `make soak`")
	}
	dur, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("NEOLINK_SOAK: %v", err)
	}
	leakCheck(t)
	const links, workers = 4, 16
	var asks, answers, lost, reopens, notifies, closeAccepts atomic.Int64
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for li := range links {
		enc := encodings[li%2]
		light := li/2 == 1
		a, b := linkPair(t, transports[1], enc, nil)
		if light {
			go serveLight(b)
		} else {
			go serveObjects(b)
		}
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(li), uint64(w)))
				var c *Conn
				defer func() {
					if c != nil {
						c.Close()
					}
				}()
				var r proto.AnswerObject
				for time.Now().Before(deadline) {
					oid := proto.Oid(rng.Uint32() & 0xfff)
					req := &proto.AskObject{OID: oid}
					switch op := rng.IntN(100); {
					case light && op < 85:
						asks.Add(1)
						if err := a.Ask1(req, &r); err != nil || r.OID != oid || len(r.Data) != int(oid) {
							lost.Add(1)
							t.Errorf("ask1: %v", err)
							return
						}
						answers.Add(1)
					case light:
						notifies.Add(1)
						a.Send1(&proto.NotifyReady{})
					case op < 80:
						if c == nil {
							c, _ = a.NewConn()
						}
						asks.Add(1)
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						err := c.AskContext(ctx, req, &r)
						cancel()
						if err != nil || r.OID != oid || len(r.Data) != int(oid) {
							lost.Add(1)
							t.Errorf("ask: %v", err)
							return
						}
						answers.Add(1)
					case op < 97:
						if c != nil {
							c.Close()
							c = nil
						}
						reopens.Add(1)
					default:
						a.CloseAccept() // we never accept: must not disturb our own asks
						closeAccepts.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("%v: %d asks, %d answers, %d lost, %d conn reopens, %d notifications, %d CloseAccept",
		dur, asks.Load(), answers.Load(), lost.Load(), reopens.Load(), notifies.Load(), closeAccepts.Load())
	if lost.Load() != 0 || asks.Load() != answers.Load() {
		t.Fatalf("lost answers: %d of %d", asks.Load()-answers.Load(), asks.Load())
	}
}
