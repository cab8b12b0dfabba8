package handshake

import (
	"bytes"

	"github.com/neolink/neolink/proto"
)

// Classify tells what the first bytes of a stream are. It has three outcomes:
//
//   - more > 0 (enc == 0, err == nil): prefix is too short to decide, but
//     could still become a handshake that Classify recognises. Reading up to
//     more further bytes is safe: it never reads past an acceptable
//     handshake (whose packets must stay unread), nor waits for bytes that
//     a NEO/go 2020 peer never sends.
//   - more == 0, err == nil: prefix starts with the handshake of enc,
//     proto.EncodingN or proto.EncodingM. It is prefix[:Size], and
//     prefix[Size:] is the start of the packet stream.
//   - more == 0, err != nil (enc == 0): the peer is not one we can talk to.
//     err is a *VersionError (our magic, other versions), a *NotNEOError,
//     ErrPeerV6, ErrPeerTLS or ErrPeerTLSAlert.
//
// Classify decides as early as the bytes allow: 1 byte for TLS and for most
// non-NEO data, 4 for a NEO/go 2020 peer, 6 for the two accepted handshakes
// and their version mismatches. A prefix longer than that decides the same
// way, so a tool can pass a whole capture. The version rules follow NEO/py:
// when the magic matches, all Size bytes are read before the verdict, so that
// a version mismatch can name the peer's version.
//
// Classify looks at no more than Size bytes, does not keep prefix (errors hold
// copies), and is safe for concurrent use.
func Classify(prefix []byte) (enc proto.Encoding, more int, err error) {
	if len(prefix) > Size {
		prefix = prefix[:Size]
	}
	if len(prefix) == 0 {
		// The shortest thing a peer may send before it waits for us is
		// the 4-byte NEO/go 2020 handshake.
		return 0, len(handshakeV6), nil
	}
	switch prefix[0] {
	case tlsHandshakeRecord:
		return 0, 0, ErrPeerTLS
	case tlsAlertRecord:
		return 0, 0, ErrPeerTLSAlert
	}
	for _, enc := range [...]proto.Encoding{proto.EncodingN, proto.EncodingM} {
		if more, ok, err := classifyAs(prefix, enc); ok {
			return decided(enc, more, err)
		}
	}
	if isPrefix(prefix, handshakeV6[:]) {
		if len(prefix) < len(handshakeV6) {
			return 0, len(handshakeV6) - len(prefix), nil
		}
		return 0, 0, ErrPeerV6
	}
	return 0, 0, &NotNEOError{Prefix: bytes.Clone(prefix)}
}

// classifyAs matches prefix against enc's magic. ok is false when the magic
// does not match, in which case the peer is not speaking enc at all.
func classifyAs(prefix []byte, enc proto.Encoding) (more int, ok bool, err error) {
	hs := handshake(enc)
	magic := hs[:magicLen(enc)]
	if !isPrefix(prefix, magic) {
		return 0, false, nil
	}
	if len(prefix) < Size {
		return Size - len(prefix), true, nil
	}
	if bytes.Equal(prefix, hs) {
		return 0, true, nil
	}
	return 0, true, &VersionError{
		Encoding: enc,
		Peer:     bytes.Clone(prefix[len(magic):]),
		Local:    bytes.Clone(hs[len(magic):]),
	}
}

// decided turns classifyAs's answer into Classify's: the encoding is only
// reported once the whole handshake has matched.
func decided(enc proto.Encoding, more int, err error) (proto.Encoding, int, error) {
	if more > 0 || err != nil {
		return 0, more, err
	}
	return enc, 0, nil
}

// isPrefix reports whether b and want agree on their common length.
func isPrefix(b, want []byte) bool {
	n := min(len(b), len(want))
	return bytes.Equal(b[:n], want[:n])
}

func magicLen(enc proto.Encoding) int {
	if enc == proto.EncodingM {
		return magicLenM
	}
	return magicLenN
}
