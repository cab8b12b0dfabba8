package bench

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
)

// Plain byte-stream variants (TCP, net.Pipe) and the stream helpers that the
// yamux and smux variants share. On a byte stream a request of shape sh is
// sh.req bytes (an 8-byte stamp, then pattern) and its reply sh.resp bytes
// with the request's stamp, then pattern: for the 32-byte shape, the request
// echoed back.

func init() {
	rttVariants["tcp-direct"] = func(e *env) rttFunc { return tcpDirect(e, small) }
	rttVariants["tcp-direct-4KiB"] = func(e *env) rttFunc { return tcpDirect(e, answers4KiB) }
	rttVariants["tcp-serverecv"] = func(e *env) rttFunc {
		c, s := tcpPair(e)
		serveRecvSplit(e, s)
		return streamRTT(c, small)
	}
	rttVariants["tcp-goperreq"] = func(e *env) rttFunc {
		c, s := tcpPair(e)
		serveGoPerRequest(e, s)
		return streamRTT(c, small)
	}
	rttVariants["pipe-direct"] = func(e *env) rttFunc {
		c, s := net.Pipe()
		e.closeOnTeardown(c)
		e.closeOnTeardown(s)
		e.serve("pipe echo", func() error { return serveStream(s, small) })
		return streamRTT(c, small)
	}
	throughputVariants["tcp"] = func(e *env, size, n int) (func(int) error, func() error) {
		c, s := tcpPair(e)
		e.serve("tcp sink", func() error { return sink(s, size, n) })
		return streamThroughput(c, size, n)
	}
	parallelVariants["tcp-64conns"] = func(e *env, workers int, sh shape) []rttFunc {
		cs, ss := tcpPairs(e, workers)
		rts := make([]rttFunc, workers)
		for w := range rts {
			e.serve("tcp server", func() error { return serveStream(ss[w], sh) })
			rts[w] = streamRTT(cs[w], sh)
		}
		return rts
	}
}

// tcpDirect: one TCP connection, the server reading and answering in one
// goroutine.
func tcpDirect(e *env, sh shape) rttFunc {
	c, s := tcpPair(e)
	e.serve("tcp server", func() error { return serveStream(s, sh) })
	return streamRTT(c, sh)
}

// serveStream answers requests of shape sh on rw in one goroutine, until rw
// fails.
func serveStream(rw io.ReadWriter, sh shape) error {
	req := make([]byte, sh.req)
	resp := newMessage(sh.resp)
	for {
		if _, err := io.ReadFull(rw, req); err != nil {
			return err
		}
		copy(resp[:8], req[:8])
		if _, err := rw.Write(resp); err != nil {
			return err
		}
	}
}

// serveOnce answers one 32-byte request on a per-request stream and closes
// it.
func serveOnce(rw io.ReadWriteCloser) error {
	defer rw.Close()
	var buf [payloadSize]byte
	if _, err := io.ReadFull(rw, buf[:]); err != nil {
		return err
	}
	_, err := rw.Write(buf[:])
	return err
}

// serveRecvSplit serves 32-byte requests on conn with two goroutines: one
// reads each request and hands it over a channel to the other, which writes
// the reply — the shape of a link whose receive loop dispatches to handlers.
func serveRecvSplit(e *env, conn net.Conn) {
	reqs := make(chan [payloadSize]byte, 1)
	quit := make(chan struct{})
	e.serve("tcp-serverecv reader", func() error {
		defer close(reqs)
		var buf [payloadSize]byte
		for {
			if _, err := io.ReadFull(conn, buf[:]); err != nil {
				return err
			}
			select {
			case reqs <- buf:
			case <-quit:
				return nil
			}
		}
	})
	e.serve("tcp-serverecv writer", func() error {
		defer close(quit)
		var buf [payloadSize]byte
		for req := range reqs {
			buf = req
			if _, err := conn.Write(buf[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// goReplier writes the replies of serveGoPerRequest, one goroutine each.
type goReplier struct {
	e    *env
	conn net.Conn
	bufs sync.Pool // *[payloadSize]byte
}

// serveGoPerRequest serves 32-byte requests on conn: a reader goroutine
// starts a new goroutine for each request, which writes the reply — the
// TCP counterpart of a Recv1 loop with `go handle(req)`.
func serveGoPerRequest(e *env, conn net.Conn) {
	r := &goReplier{e: e, conn: conn}
	r.bufs.New = func() any { return new([payloadSize]byte) }
	e.serve("tcp-goperreq reader", func() error {
		for {
			buf := r.bufs.Get().(*[payloadSize]byte)
			if _, err := io.ReadFull(conn, buf[:]); err != nil {
				return err
			}
			e.wg.Add(1)
			go r.reply(buf)
		}
	})
}

func (r *goReplier) reply(buf *[payloadSize]byte) {
	defer r.e.wg.Done()
	_, err := r.conn.Write(buf[:])
	r.bufs.Put(buf)
	if err != nil {
		r.e.fail("tcp-goperreq reply", err)
	}
}

// streamRTT returns a round trip of shape sh over rw: write a stamped
// request, read the reply, check its stamp and content.
func streamRTT(rw io.ReadWriter, sh shape) rttFunc {
	req := newMessage(sh.req)
	resp := make([]byte, sh.resp)
	return func(i int) error {
		stamp(req, uint64(i)+1)
		if _, err := rw.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(rw, resp); err != nil {
			return err
		}
		return checkPayload(resp, sh.resp, uint64(i)+1)
	}
}

// perRequestRTT returns a 32-byte round trip on a new stream from open,
// closed after the reply.
func perRequestRTT[S io.ReadWriteCloser](open func() (S, error)) rttFunc {
	req := newMessage(payloadSize)
	resp := make([]byte, payloadSize)
	return func(i int) error {
		s, err := open()
		if err != nil {
			return err
		}
		defer s.Close()
		stamp(req, uint64(i)+1)
		if _, err := s.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(s, resp); err != nil {
			return err
		}
		return checkPayload(resp, payloadSize, uint64(i)+1)
	}
}

// sink reads n stamped messages of size bytes from rw, checking each, then
// writes the count (8 bytes) as the acknowledgement that ends the timing.
func sink(rw io.ReadWriter, size, n int) error {
	buf := make([]byte, size)
	for i := range n {
		if _, err := io.ReadFull(rw, buf); err != nil {
			return err
		}
		if err := checkMessage(buf, size, uint64(i)+1); err != nil {
			return err
		}
	}
	var ack [8]byte
	binary.BigEndian.PutUint64(ack[:], uint64(n))
	_, err := rw.Write(ack[:])
	return err
}

// streamThroughput returns the sender side of a sink: send writes message i,
// finish waits for the sink's acknowledgement of all n.
func streamThroughput(w io.ReadWriter, size, n int) (send func(int) error, finish func() error) {
	msg := newMessage(size)
	send = func(i int) error {
		stampMessage(msg, uint64(i)+1)
		_, err := w.Write(msg)
		return err
	}
	finish = func() error {
		var ack [8]byte
		if _, err := io.ReadFull(w, ack[:]); err != nil {
			return err
		}
		if got := binary.BigEndian.Uint64(ack[:]); got != uint64(n) {
			return fmt.Errorf("receiver acknowledged %d messages, want %d", got, n)
		}
		return nil
	}
	return send, finish
}
