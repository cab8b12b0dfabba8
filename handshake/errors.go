package handshake

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/neolink/neolink/proto"
)

// Error is the only error type Handshake and Accept return. It names both
// ends of the conn and wraps the reason, which errors.Is and errors.As reach
// through Unwrap. When an *Error is returned the conn has been closed.
//
// This package never modifies an error after returning it, so errors may be
// shared between goroutines.
type Error struct {
	LocalAddr  net.Addr
	RemoteAddr net.Addr
	Err        error
}

// Error formats as "<local> - <remote>: handshake: <err>", the form NEO/go
// 2020 used, so logs from both look alike.
func (e *Error) Error() string {
	return fmt.Sprintf("%s - %s: handshake: %v", addrString(e.LocalAddr), addrString(e.RemoteAddr), e.Err)
}

// Unwrap returns Err, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Cause returns Err, for github.com/pkg/errors.Cause.
func (e *Error) Cause() error { return e.Err }

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
	return fmt.Sprintf("encoding %v: protocol version mismatch: peer = %s; our side = %s",
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
	return fmt.Sprintf("encoding mismatch: peer speaks %v; our side speaks %v", e.Peer, e.Local)
}

// NotNEOError means that the peer's first bytes are no NEO handshake of any
// known dialect. Prefix holds the bytes that showed it.
type NotNEOError struct {
	Prefix []byte
}

// Error shows the bytes received, in hex, next to the handshakes expected.
func (e *NotNEOError) Error() string {
	return fmt.Sprintf("peer is not a NEO node: it sent %x, which starts no NEO handshake (N %x, M %x)",
		e.Prefix, handshakeN, handshakeM)
}

var (
	// ErrPeerV6 means that the peer sent 00 00 00 06: it is NEO/go 2020 or
	// NEO/py old-proto, whose binary protocol v6 this package does not speak.
	ErrPeerV6 = errors.New("peer speaks NEO/go-2020 protocol v6 (handshake 00000006), not N or M")

	// ErrPeerTLS means that the peer's first byte is 0x16, a TLS
	// ClientHello, while this side expected a plain NEO handshake. TLS
	// must be configured on both ends or on neither.
	ErrPeerTLS = errors.New("peer started TLS (first byte 0x16, a ClientHello) but our side is plain: configure TLS on both ends or on neither")
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
// keeping io.EOF (nothing read) or io.ErrUnexpectedEOF (partial handshake)
// for errors.Is.
func closedError(got []byte) error {
	if len(got) == 0 {
		return fmt.Errorf("peer closed the connection before sending a handshake: %w", io.EOF)
	}
	return fmt.Errorf("peer closed the connection after %d handshake bytes (%x): %w", len(got), got, io.ErrUnexpectedEOF)
}
