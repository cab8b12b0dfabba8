package bench

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// Plain byte-stream variants (TCP, net.Pipe) and the stream helpers that the
// yamux and smux variants share. On a byte stream a request is 32 bytes
// (an 8-byte stamp, then pattern) and the reply is the request echoed back.

func init() {
	rttVariants["tcp-direct"] = func(e *env) rttFunc {
		c, s := tcpPair(e)
		e.serve("tcp echo", func() error { return echo(s) })
		return streamRTT(c)
	}
	rttVariants["tcp-serverecv"] = func(e *env) rttFunc {
		c, s := tcpPair(e)
		serveRecvSplit(e, s)
		return streamRTT(c)
	}
	rttVariants["pipe-direct"] = func(e *env) rttFunc {
		c, s := net.Pipe()
		e.closeOnTeardown(c)
		e.closeOnTeardown(s)
		e.serve("pipe echo", func() error { return echo(s) })
		return streamRTT(c)
	}
	throughputVariants["tcp"] = func(e *env, n int) (func(int) error, func() error) {
		c, s := tcpPair(e)
		e.serve("tcp sink", func() error { return sink(s, n) })
		return streamThroughput(c, n)
	}
	parallelVariants["tcp-64conns"] = func(e *env, workers int) []rttFunc {
		cs, ss := tcpPairs(e, workers)
		rts := make([]rttFunc, workers)
		for w := range rts {
			e.serve("tcp echo", func() error { return echo(ss[w]) })
			rts[w] = streamRTT(cs[w])
		}
		return rts
	}
}

// echo serves 32-byte requests on rw, replying to each with its copy, in one
// goroutine, until rw fails.
func echo(rw io.ReadWriter) error {
	buf := make([]byte, payloadSize)
	for {
		if _, err := io.ReadFull(rw, buf); err != nil {
			return err
		}
		if _, err := rw.Write(buf); err != nil {
			return err
		}
	}
}

// echoOnce serves one request on a per-request stream and closes it.
func echoOnce(rw io.ReadWriteCloser) error {
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

// streamRTT returns a round trip over rw: write a stamped 32-byte request,
// read the reply, check it is the request.
func streamRTT(rw io.ReadWriter) rttFunc {
	req := make([]byte, payloadSize)
	resp := make([]byte, payloadSize)
	copy(req, pattern)
	return func(i int) error {
		stamp(req, uint64(i)+1)
		if _, err := rw.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(rw, resp); err != nil {
			return err
		}
		return checkPayload(resp, payloadSize, uint64(i)+1)
	}
}

// perRequestRTT returns a round trip on a new stream from open, closed after
// the reply.
func perRequestRTT[S io.ReadWriteCloser](open func() (S, error)) rttFunc {
	req := make([]byte, payloadSize)
	resp := make([]byte, payloadSize)
	copy(req, pattern)
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

// sink reads n stamped 1 MiB messages from rw, checking each, then writes the
// count (8 bytes) as the acknowledgement that ends the timing.
func sink(rw io.ReadWriter, n int) error {
	buf := make([]byte, bigSize)
	for i := range n {
		if _, err := io.ReadFull(rw, buf); err != nil {
			return err
		}
		if err := checkBig(buf, uint64(i)+1); err != nil {
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
func streamThroughput(w io.ReadWriter, n int) (send func(int) error, finish func() error) {
	msg := newBig()
	send = func(i int) error {
		stampBig(msg, uint64(i)+1)
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
