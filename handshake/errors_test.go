package handshake

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/neolink/neolink/proto"
)

func TestErrorFormat(t *testing.T) {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2}
	e := &Error{LocalAddr: local, RemoteAddr: remote, Err: ErrPeerV6}
	want := "handshake: 127.0.0.1:1 - 127.0.0.1:2: peer speaks NEO/go-2020 protocol v6 (handshake 00000006), not N or M"
	if e.Error() != want {
		t.Errorf("got %q, want %q", e, want)
	}
	if e.Unwrap() != ErrPeerV6 || e.Cause() != ErrPeerV6 || !errors.Is(e, ErrPeerV6) {
		t.Error("Unwrap/Cause do not return Err")
	}
	if got := (&Error{Err: io.EOF}).Error(); got != "handshake: ? - ?: EOF" {
		t.Errorf("nil addresses: %q", got)
	}
}

func TestErrorMessages(t *testing.T) {
	for err, want := range map[error]string{
		&VersionError{proto.EncodingN, []byte{1, 6}, []byte{1, 5}}:    "handshake: encoding N: protocol version mismatch: peer = 0106 (framing 1, protocol 6); our side = 0105 (framing 1, protocol 5)",
		&VersionError{proto.EncodingM, []byte{4}, []byte{5}}:          "handshake: encoding M: protocol version mismatch: peer = 04 (protocol 4); our side = 05 (protocol 5)",
		&EncodingError{Peer: proto.EncodingM, Local: proto.EncodingN}: "handshake: encoding mismatch: peer speaks M; our side speaks N",
		&NotNEOError{Prefix: []byte("GET ")}:                          "handshake: peer is not a NEO node: it sent 47455420, which starts no NEO handshake (N 4e454f4e0105, M 92a34e454f05)",
		closedError(nil, io.EOF):                                      "handshake: peer closed the connection before sending a handshake: EOF",
		closedError([]byte("N"), io.EOF):                              "handshake: peer closed the connection after 1 handshake bytes (4e): unexpected EOF",
		&closedEarly{hint: dialHint(proto.EncodingN), cause: io.EOF}:  "handshake: peer closed the connection before sending a handshake: EOF; it may speak the M encoding (NEO/py) or require TLS",
	} {
		if err.Error() != want {
			t.Errorf("got  %q\nwant %q", err, want)
		}
	}
}

// TestErrorPrefix: every error of the package, alone or inside an *Error,
// reads "handshake: ..." with the prefix exactly once.
func TestErrorPrefix(t *testing.T) {
	var errs []error
	for _, in := range []string{"\x16", "\x15", "\x00\x00\x00\x06", "NEON\x01\x06", "\x92\xa3NEO\x04", "GET "} {
		_, _, err := Classify([]byte(in))
		errs = append(errs, err)
	}
	errs = append(errs,
		&EncodingError{Peer: proto.EncodingM, Local: proto.EncodingN},
		closedError(nil, io.EOF), closedError([]byte("NE"), io.EOF),
		&closedEarly{hint: dialHint(proto.EncodingM), cause: io.EOF})
	for _, err := range errs {
		for _, e := range []error{err, &Error{Err: err}} {
			if msg := e.Error(); !strings.HasPrefix(msg, "handshake: ") || strings.Contains(msg, ": handshake: ") {
				t.Errorf("%q", msg)
			}
		}
	}
}
