package neonet

import (
	"errors"
	"fmt"
	"net"
)

// Sentinel errors, usable with errors.Is on anything neonet returns.
var (
	// ErrLinkClosed: the link was closed with Close (or Shutdown).
	ErrLinkClosed = errors.New("neonet: link is closed")
	// ErrLinkDown: the link failed (I/O error, peer gone, bad input,
	// keepalive, overflow of the accept backlog by a notification). Every
	// call on a failed link returns an error that matches ErrLinkDown and
	// unwraps to the cause (see NodeLink.Err).
	ErrLinkDown = errors.New("neonet: link is down")
	// ErrLinkNoListen: the link does not accept incoming connections
	// (CloseAccept was called).
	ErrLinkNoListen = errors.New("neonet: link is not accepting connections")
	// ErrLinkManyConn: every connection id of our parity is in use.
	ErrLinkManyConn = errors.New("neonet: too many open connections")
	// ErrClosedConn: the Conn was closed (or, for receiving, CloseRecv'ed).
	ErrClosedConn = errors.New("neonet: connection is closed")
	// ErrConnOverflow: the Conn was aborted because its unread packets
	// exceeded Config.ConnRecvBuffer, or it held the most unread bytes when
	// the link exceeded Config.LinkRecvBuffer.
	ErrConnOverflow = errors.New("neonet: connection aborted: receive queue overflow")
	// ErrAcceptOverflow: the peer sent a notification on a new id while the
	// accept backlog was full. A notification cannot be refused with an
	// answer, and dropping it would lose data silently, so the link goes
	// down with this cause (errors.Is matches both it and ErrLinkDown).
	ErrAcceptOverflow = errors.New("neonet: accept backlog full: notification from peer cannot be queued")
	// ErrWriteTimeout: a write to the peer made no progress for
	// Config.WriteTimeout; the link goes down with this cause.
	ErrWriteTimeout = errors.New("neonet: write to peer made no progress (peer not reading)")
	// ErrPacketTimeout: a packet started arriving but was not complete
	// within Config.PacketTimeout; the link goes down with this cause.
	ErrPacketTimeout = errors.New("neonet: packet not completed within PacketTimeout (peer stalled or trickling)")
	// ErrPeerNotTLS: a TLS-configured end received a plain NEO handshake.
	ErrPeerNotTLS = errors.New("neonet: peer does not use TLS")
	// ErrUnexpected: a message arrived that the caller did not expect.
	ErrUnexpected = errors.New("neonet: unexpected message")
)

// downError is the error a failed link reports: it matches ErrLinkDown and
// unwraps to what took the link down, so callers can test for either.
type downError struct{ cause error }

func (e *downError) Error() string { return "neonet: link is down: " + e.cause.Error() }

// Is makes errors.Is(err, ErrLinkDown) true.
func (e *downError) Is(target error) bool { return target == ErrLinkDown }

// Unwrap returns the cause.
func (e *downError) Unwrap() error { return e.cause }

// Cause returns the cause (github.com/pkg/errors convention).
func (e *downError) Cause() error { return e.cause }

// LinkError is an error of a link-level operation.
type LinkError struct {
	Link *NodeLink
	Op   string // "newconn", "accept", "close", "recv1", "send1", "ask1", "keepalive", "shutdown"
	Err  error
}

// Error formats the failure as "<local> - <remote>: op: reason".
func (e *LinkError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Link, e.Op, e.Err) }

// Unwrap returns the underlying error.
func (e *LinkError) Unwrap() error { return e.Err }

// Cause returns the underlying error (github.com/pkg/errors convention).
func (e *LinkError) Cause() error { return e.Err }

// ConnError is an error of an operation on one connection.
type ConnError struct {
	Link   *NodeLink
	ConnID uint32 // the id, not the *Conn: light-mode Conns are reused
	Op     string // "send", "recv", "decode", "ask1", "reply"
	Err    error
}

// Error formats the failure as "<local> - <remote> .id: op: reason".
func (e *ConnError) Error() string {
	return fmt.Sprintf("%s .%d: %s: %v", e.Link, e.ConnID, e.Op, e.Err)
}

// Unwrap returns the underlying error.
func (e *ConnError) Unwrap() error { return e.Err }

// Cause returns the underlying error (github.com/pkg/errors convention).
func (e *ConnError) Cause() error { return e.Err }

// String describes the link as "<local> - <remote>".
func (l *NodeLink) String() string {
	return addrString(l.nc.LocalAddr()) + " - " + addrString(l.nc.RemoteAddr())
}

func addrString(a net.Addr) string {
	if a == nil {
		return "?"
	}
	return a.String()
}
