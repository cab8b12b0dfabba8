package main

import (
	"errors"
	"fmt"
	"github.com/neolink/neolink/neonet"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Logging and accounting for serve under load or attack: rate-limited log
// lines, and a listener that counts handshakes in flight and the bytes
// each connection sent, and says when the process is out of descriptors.

// rateLog writes log lines, at most burst lines per kind per second; the
// lines beyond are counted and reported once the kind's next window opens
// (or at flush). It is safe for concurrent use.
type rateLog struct {
	log   *log.Logger
	burst int

	mu    sync.Mutex
	kinds map[string]*logWindow
}

// logWindow is the state of one kind of line.
type logWindow struct {
	start      time.Time
	n          int // lines in the window, written or not
	suppressed int // lines not written since the last report
}

// newRateLog returns a rateLog writing to l.
func newRateLog(l *log.Logger, burst int) *rateLog {
	return &rateLog{log: l, burst: burst, kinds: make(map[string]*logWindow)}
}

// printf writes a line of the given kind unless the kind is over its rate.
func (r *rateLog) printf(kind, format string, args ...any) {
	now := time.Now()
	r.mu.Lock()
	w := r.kinds[kind]
	if w == nil {
		w = &logWindow{start: now}
		r.kinds[kind] = w
	}
	var report int
	if now.Sub(w.start) >= time.Second {
		report, w.suppressed = w.suppressed, 0
		w.start, w.n = now, 0
	}
	w.n++
	write := w.n <= r.burst
	if !write {
		w.suppressed++
	}
	r.mu.Unlock()
	if report > 0 {
		r.log.Printf("(%d more %q lines were not logged)", report, kind)
	}
	if write {
		r.log.Printf(format, args...)
	}
}

// flush reports the lines suppressed so far.
func (r *rateLog) flush() {
	r.mu.Lock()
	type rep struct {
		kind string
		n    int
	}
	var reps []rep
	for k, w := range r.kinds {
		if w.suppressed > 0 {
			reps = append(reps, rep{k, w.suppressed})
			w.suppressed = 0
		}
	}
	r.mu.Unlock()
	for _, x := range reps {
		r.log.Printf("(%d more %q lines were not logged)", x.n, x.kind)
	}
}

// listenerHandshakeSlots is the number of handshakes a neonet.LinkListener
// runs at once: beyond it the oldest is dropped. Only used to say so in the
// log.
const listenerHandshakeSlots = neonet.MaxHandshakes

// watchListener wraps serve's net.Listener: it logs EMFILE/ENFILE (the
// LinkListener then backs off and retries), counts the connections whose
// handshake is under way, and counts the bytes each connection has read so
// that a failed handshake can say how many arrived.
type watchListener struct {
	net.Listener
	log *rateLog

	emfile   atomic.Uint64
	inFlight atomic.Int64 // accepted, handshake not finished
	full     atomic.Uint64

	mu    sync.Mutex
	conns map[string]*countConn // by remote address, while handshaking
}

// Accept accepts the next connection; see watchListener.
func (w *watchListener) Accept() (net.Conn, error) {
	nc, err := w.Listener.Accept()
	if err != nil {
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			w.emfile.Add(1)
			w.log.printf("emfile", "accept: %v: out of file descriptors, backing off (raise 'ulimit -n', or fewer links)", err)
		}
		return nil, err
	}
	if n := w.inFlight.Add(1); n >= listenerHandshakeSlots {
		w.full.Add(1)
		w.log.printf("slots", "%d handshakes in flight, the listener's limit: the oldest are dropped (slow or silent peers?)", n)
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc, nil
	}
	cc := &countConn{TCPConn: tc}
	w.mu.Lock()
	w.conns[nc.RemoteAddr().String()] = cc
	w.mu.Unlock()
	return cc, nil
}

// handshakeDone records the end of the handshake of remote and returns
// how many bytes it had read (-1 if unknown).
func (w *watchListener) handshakeDone(remote net.Addr) int64 {
	w.inFlight.Add(-1)
	if remote == nil {
		return -1
	}
	w.mu.Lock()
	cc := w.conns[remote.String()]
	delete(w.conns, remote.String())
	w.mu.Unlock()
	if cc == nil {
		return -1
	}
	return cc.n.Load()
}

// countConn is a TCP connection that counts the bytes read from it. It
// embeds *net.TCPConn so that the TCP-specific methods (CloseWrite,
// SyscallConn, SetKeepAlive...) stay available to interface assertions.
type countConn struct {
	*net.TCPConn
	n atomic.Int64
}

// Read reads from the connection and counts the bytes.
func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// bytesNote formats "after N bytes" for a handshake failure log line.
func bytesNote(n int64) string {
	switch {
	case n < 0:
		return ""
	case n == 1:
		return " after 1 byte"
	}
	return fmt.Sprintf(" after %d bytes", n)
}
