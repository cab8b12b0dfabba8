package handshake

import "github.com/neolink/neolink/proto"

const (
	// Size is the length in bytes of both the N and the M handshake. A
	// handshake accepted by Classify is always prefix[:Size].
	Size = 6

	// ProtocolVersion is the NEO protocol version both handshakes announce.
	// It is NEO/py master's PROTOCOL_VERSION, because the messages are the
	// same in both encodings; only the framing differs.
	ProtocolVersion = 5

	// FramingVersion is the version of the N framing that the N handshake
	// announces. It lets the N framing change without pretending that the
	// NEO protocol (messages, semantics) changed.
	FramingVersion = 1
)

// The handshakes are arrays, not slices, so that no caller can change them:
// Bytes hands out copies, and the package writes them from a read-only slice.
var (
	// handshakeN starts with 'N' (0x4e), which is neither M's 0x92, nor a TLS
	// record's 0x16, nor the 0x00 of NEO/go 2020. Any future N handshake must
	// keep the magic and be at least Size bytes long, so that an older peer
	// can still read both version bytes and report a version mismatch.
	handshakeN = [Size]byte{'N', 'E', 'O', 'N', FramingVersion, ProtocolVersion}

	// handshakeM is NEO/py's packb(('NEO', PROTOCOL_VERSION)): a msgpack
	// fixarray of 2, fixstr "NEO", positive fixint 5.
	handshakeM = [Size]byte{0x92, 0xa3, 'N', 'E', 'O', ProtocolVersion}

	// handshakeV6 is what NEO/go 2020 and NEO/py old-proto send: the
	// big-endian uint32 6. Such a peer sends these 4 bytes and then waits
	// for ours, so it is recognised after 4 bytes.
	handshakeV6 = [4]byte{0, 0, 0, 6}
)

const (
	// magicLenN is the part of handshakeN that does not depend on versions.
	magicLenN = 4
	// magicLenM is NEO/py's MAGIC_SIZE: everything but the packed version.
	magicLenM = 5
	// tlsHandshakeRecord is the first byte of a TLS ClientHello (content
	// type 22, handshake); NEO/py's TLS server peeks at exactly this byte.
	tlsHandshakeRecord = 0x16
	// tlsAlertRecord is the first byte of a TLS alert record (content type
	// 21). Some TLS servers answer a plain handshake with one before they
	// close; the N and M handshakes never start with it.
	tlsAlertRecord = 0x15
)

// Bytes returns a new copy of the handshake that this side sends for enc, or
// nil if enc is neither proto.EncodingN nor proto.EncodingM. The caller owns
// the slice. Bytes is safe for concurrent use.
func Bytes(enc proto.Encoding) []byte {
	hs := handshake(enc)
	if hs == nil {
		return nil
	}
	return append([]byte(nil), hs...)
}

// handshake returns the package's own read-only copy of enc's handshake, or
// nil if enc is not valid. Callers must not modify it.
func handshake(enc proto.Encoding) []byte {
	switch enc {
	case proto.EncodingN:
		return handshakeN[:]
	case proto.EncodingM:
		return handshakeM[:]
	}
	return nil
}
