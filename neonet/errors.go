package neonet

import (
	"errors"
	"fmt"
	"net"
)

// Sentinel errors, usable with errors.Is on anything neonet returns.
var (
	// ErrLinkClosed: the link was closed with Close (or Shutdown).
	ErrLinkClosed = errors.New("node link is closed")
	// ErrLinkDown: the link failed (I/O error, peer gone, bad input). The
	// first call on each Conn to see the failure gets the real error instead.
	ErrLinkDown = errors.New("node link is down")
	// ErrLinkNoListen: the link does not accept incoming connections
	// (CloseAccept was called).
	ErrLinkNoListen = errors.New("node link is not listening for incoming connections")
	// ErrLinkManyConn: every connection id of our parity is in use.
	ErrLinkManyConn = errors.New("too many opened connections")
	// ErrClosedConn: the Conn was closed (or, for receiving, CloseRecv'ed).
	ErrClosedConn = errors.New("connection is closed")
	// ErrConnOverflow: the Conn was aborted because its unread packets
	// exceeded Config.ConnRecvBuffer or Config.LinkRecvBuffer.
	ErrConnOverflow = errors.New("connection aborted: receive queue overflow")
	// ErrPeerNotTLS: a TLS-configured end received a plain NEO handshake.
	ErrPeerNotTLS = errors.New("peer does not use TLS")
	// ErrUnexpected: a message arrived that the caller did not expect.
	ErrUnexpected = errors.New("unexpected message")
)

// LinkError is an error of a link-level operation.
type LinkError struct {
	Link *NodeLink
	Op   string // "newconn", "accept", "close", "recv1", "send1", "ask1", "keepalive"
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
