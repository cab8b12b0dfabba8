// Package neonet is the NEO link layer: one network connection (a NodeLink)
// carrying many logical connections (Conn), each a stream of NEO messages
// from package proto.
//
// A link is made by DialLink, by a LinkListener from ListenLink, or by
// NewLink over any net.Conn (TCP, UNIX socket, net.Pipe, TLS). The handshake
// picks the wire encoding: N (10-byte headers, for Go↔Go links) or M (NEO/py
// master's msgpack stream); a listener detects which one the peer speaks.
//
// Connection ids follow HTTP/2: the dialer allocates odd ids, the listener
// even ones, += 2. On N links packets are routed by id parity; on M links by
// NEO/py's answer bit, which is what lets an unmodified NEO/py node talk to
// us. Messages go with Send/Recv, Ask (request → answer, an Error answer
// becomes the error) and Expect; the lightweight mode (Send1, Ask1, Recv1 +
// Request.Reply) uses one fresh id per request, as NEO/py does.
//
// A goroutine waiting for a packet reads the socket itself and routes what
// it reads to the others (rx.go), so a serial round trip costs no goroutine
// switch; when nobody waits, the link reads on its own, so it always drains
// its socket and notices a peer that goes away. Concurrent senders share
// writes (tx.go), and large messages are neither copied on the way out nor
// on the way in. The steady-state Send, Recv, Ask, Ask1 and Recv1+Reply
// paths do not allocate. A Conn that stops reading cannot stall the others:
// what is queued for it is bounded in memory, and overflowing the bound
// aborts that Conn alone.
//
// Lightweight mode: Send1, Ask1 and Recv1 use one fresh id per request and
// no open or close frames, as NEO/py does: a light request's Conn is
// recycled by the link, so the mode costs no Conn setup.
//
// All methods are safe for concurrent use. docs/design.md describes the
// invariants; docs/protocol.md the wire format.
package neonet
