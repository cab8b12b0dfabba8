package handshake

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/neolink/neolink/proto"
)

// Error is the only error type Dial and Accept return. It names both ends
// of the conn and wraps the reason, which errors.Is and errors.As reach
// through Unwrap. When an *Error is returned the conn has been closed.
//
// Every error this package creates formats as "handshake: ...", with the
// prefix once: an *Error shows its reason without repeating it.
//
// This package never modifies an error after returning it, so errors may be
// shared between goroutines.
type Error struct {
	LocalAddr  net.Addr
	RemoteAddr net.Addr
	Err        error
}

// Error formats as "handshake: <local> - <remote>: <reason>".
func (e *Error) Error() string {
	return fmt.Sprintf("handshake: %s - %s: %s", addrString(e.LocalAddr), addrString(e.RemoteAddr), reason(e.Err))
}

// Unwrap returns Err, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Cause returns Err, for github.com/pkg/errors.Cause.
func (e *Error) Cause() error { return e.Err }

// reason returns err's message without this package's prefix, so that a
// wrapping *Error carries the prefix once.
func reason(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.TrimPrefix(err.Error(), prefix)
}

const prefix = "handshake: "

func addrString(a net.Addr) string {
	if a == nil {
		return "?"
	}
	return a.String()
}

// VersionError means that the peer sent the magic of Encoding with other
// versions than ours: it is a NEO node of another release. Peer and Local
// hold the version bytes that follow the magic (framing and protocol version
// for N, the packed protocol version for M).
type VersionError struct {
	Encoding proto.Encoding
	Peer     []byte
	Local    []byte
}

// Error names the encoding and both versions, as hex and decoded.
func (e *VersionError) Error() string {
	return fmt.Sprintf(prefix+"encoding %v: protocol version mismatch: peer = %s; our side = %s",
		e.Encoding, describeVersion(e.Encoding, e.Peer), describeVersion(e.Encoding, e.Local))
}

// describeVersion shows the raw version bytes, which is what an operator can
// compare with a capture, followed by their meaning when there is one.
func describeVersion(enc proto.Encoding, v []byte) string {
	switch {
	case enc == proto.EncodingN && len(v) == 2:
		return fmt.Sprintf("%x (framing %d, protocol %d)", v, v[0], v[1])
	case enc == proto.EncodingM && len(v) == 1 && v[0] < 0x80:
		// Only a msgpack positive fixint is a version NEO/py can send.
		return fmt.Sprintf("%x (protocol %d)", v, v[0])
	}
	return fmt.Sprintf("%x", v)
}

// EncodingError means that the peer sent a valid handshake of the other
// encoding than the one this side was told to use.
type EncodingError struct {
	Peer  proto.Encoding
	Local proto.Encoding
}

// Error names both encodings.
func (e *EncodingError) Error() string {
	return fmt.Sprintf(prefix+"encoding mismatch: peer speaks %v; our side speaks %v", e.Peer, e.Local)
}

// NotNEOError means that the peer's first bytes are no NEO handshake of any
// known dialect. Prefix holds the bytes that showed it.
type NotNEOError struct {
	Prefix []byte
}

// Error shows the bytes received, in hex, next to the handshakes expected.
func (e *NotNEOError) Error() string {
	return fmt.Sprintf(prefix+"peer is not a NEO node: it sent %x, which starts no NEO handshake (N %x, M %x)",
		e.Prefix, handshakeN, handshakeM)
}

var (
	// ErrPeerV6 means that the peer sent 00 00 00 06: it is NEO/go 2020 or
	// NEO/py old-proto, whose binary protocol v6 this package does not speak.
	ErrPeerV6 = errors.New(prefix + "peer speaks NEO/go-2020 protocol v6 (handshake 00000006), not N or M")

	// ErrPeerTLS means that the peer's first byte is 0x16, a TLS
	// ClientHello, while this side expected a plain NEO handshake. TLS
	// must be configured on both ends or on neither.
	ErrPeerTLS = errors.New(prefix + "peer started TLS (first byte 0x16, a ClientHello) but our side is plain: configure TLS on both ends or on neither")

	// ErrPeerTLSAlert means that the peer answered with a TLS alert record
	// (first byte 0x15): it is a TLS server that took our plain handshake
	// for a broken TLS record. Many TLS servers (OpenSSL's, Go's) close
	// without an alert instead; Dial then reports a close before any
	// handshake and names TLS as a likely reason.
	ErrPeerTLSAlert = errors.New(prefix + "peer answered with a TLS alert (first byte 0x15): it expects TLS but our side is plain: configure TLS on both ends or on neither")
)

// fromNEOPeer reports whether err says that the peer is a NEO node that
// disagrees with us. Such a peer reads our whole handshake and can report
// the disagreement on its side too, if we let it arrive before closing.
func fromNEOPeer(err error) bool {
	var ve *VersionError
	var ee *EncodingError
	return errors.As(err, &ve) || errors.As(err, &ee) || errors.Is(err, ErrPeerV6)
}

// closedError explains an end of stream in the middle of the handshake,
// keeping cause for errors.Is: io.EOF or a reset when nothing was read,
// io.ErrUnexpectedEOF for a partial handshake ended by EOF.
func closedError(got []byte, cause error) error {
	if len(got) == 0 {
		return &closedEarly{cause: cause}
	}
	if errors.Is(cause, io.EOF) {
		cause = io.ErrUnexpectedEOF
	}
	return fmt.Errorf(prefix+"peer closed the connection after %d handshake bytes (%x): %w", len(got), got, cause)
}

// closedEarly is a peer that closed (or reset) the connection before its
// first handshake byte. A peer that closes on reading our handshake is most
// often one that expects another encoding or TLS, so Dial adds a hint
// naming them.
type closedEarly struct {
	hint  string // the likely reasons, or ""
	cause error  // io.EOF or the reset
}

func (e *closedEarly) Error() string {
	if e.hint == "" {
		return fmt.Sprintf(prefix+"peer closed the connection before sending a handshake: %v", e.cause)
	}
	return fmt.Sprintf(prefix+"peer closed the connection before sending a handshake: %v; %s", e.cause, e.hint)
}

func (e *closedEarly) Unwrap() error { return e.cause }

// dialHint names why a peer may close on reading our handshake of enc
// without answering: NEO/py master reads an N handshake and closes, and a
// TLS server reads our handshake as a broken TLS record and closes.
func dialHint(enc proto.Encoding) string {
	if enc == proto.EncodingN {
		return "it may speak the M encoding (NEO/py) or require TLS"
	}
	return "it may require TLS or speak only the N encoding"
}

// isReset reports whether err is the peer resetting the connection, which
// is how a peer that closes with our handshake unread ends the stream.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
