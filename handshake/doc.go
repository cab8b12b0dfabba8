// Package handshake opens a NEO link: it exchanges the few bytes that each end
// sends before its first packet, and so settles which framing (proto.Encoding)
// the rest of the stream uses.
//
// Two handshakes are accepted, both Size (6) bytes long:
//
//	M  92 a3 4e 45 4f 05   msgpack ("NEO", 5), NEO/py master's HANDSHAKE_PACKET
//	N  4e 45 4f 4e 01 05   "NEON", framing version 1, protocol version 5
//
// Their first bytes differ from each other, from a TLS record (0x16) and from
// the 00 00 00 06 that NEO/go 2020 and NEO/py old-proto send, so the first bytes
// from a peer tell which dialect it speaks, and Classify turns that into a
// typed error when it is not one we accept. A NEO/go 2020 peer reads our first
// 4 bytes, 4e454f4e, and reports its usual "protocol version mismatch" rather
// than a bare close.
//
// The package's two entry points are the two halves of one handshake, named
// for the side that calls them, so that a call site reads as what it does:
//
//	err := handshake.Dial(ctx, nc, proto.EncodingN) // we dialed nc
//	enc, err := handshake.Accept(ctx, nc, 0)        // we accepted nc; 0 detects
//
// Dial (and Accept with a fixed encoding) sends and receives at the same
// time, as NEO/py does: nobody waits for the peer before sending, so the
// handshake costs no round trip. Accept with encoding 0 (a listener in auto
// mode) reads the peer's handshake first and answers in the same encoding.
// Both read exactly the peer's handshake and not one byte more: whatever the
// peer sent behind it (NEO/py sends RequestIdentification in the same segment)
// stays in the conn for the link's packet reader.
//
// Every failure is an *Error that names both ends. It wraps one of
// *VersionError, *EncodingError, *NotNEOError, ErrPeerV6, ErrPeerTLS,
// ErrPeerTLSAlert, an io.EOF or io.ErrUnexpectedEOF based error (or the
// reset of a peer that closed without reading all we sent), the context's
// error, or the conn's own I/O error, and the conn is closed by then. Every
// message of this package starts with "handshake: ".
package handshake
