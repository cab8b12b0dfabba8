package handshake_test

import (
	"errors"
	"fmt"

	"github.com/neolink/neolink/handshake"
)

// Classify decides what a peer speaks from the first bytes it sent, and how
// many more bytes it is safe to read when the prefix is not enough.
func ExampleClassify() {
	for _, prefix := range [][]byte{
		{0x92, 0xa3, 'N', 'E', 'O', 0x05, 0x93, 0x00, 0x01}, // NEO/py master, its first packet behind
		{0x4e, 0x45, 0x4f, 0x4e, 0x01, 0x05},                // our N handshake
		{0x92, 0xa3},                                        // a prefix of M: undecided
		{0x00, 0x00, 0x00, 0x06},                            // NEO/go 2020, NEO/py old-proto
		{0x92, 0xa3, 'N', 'E', 'O', 0x04},                   // NEO/py master, protocol 4
		{0x16, 0x03, 0x01},                                  // a TLS ClientHello
		{'G', 'E', 'T', ' '},                                // not NEO
	} {
		enc, more, err := handshake.Classify(prefix)
		switch {
		case err != nil:
			fmt.Printf("% x: %v\n", prefix, err)
		case more > 0:
			fmt.Printf("% x: undecided, read up to %d more bytes\n", prefix, more)
		default:
			fmt.Printf("% x: encoding %v, packets start at byte %d\n", prefix, enc, handshake.Size)
		}
	}

	// Output:
	// 92 a3 4e 45 4f 05 93 00 01: encoding M, packets start at byte 6
	// 4e 45 4f 4e 01 05: encoding N, packets start at byte 6
	// 92 a3: undecided, read up to 4 more bytes
	// 00 00 00 06: handshake: peer speaks NEO/go-2020 protocol v6 (handshake 00000006), not N or M
	// 92 a3 4e 45 4f 04: handshake: encoding M: protocol version mismatch: peer = 04 (protocol 4); our side = 05 (protocol 5)
	// 16 03 01: handshake: peer started TLS (first byte 0x16, a ClientHello) but our side is plain: configure TLS on both ends or on neither
	// 47 45 54 20: handshake: peer is not a NEO node: it sent 47455420, which starts no NEO handshake (N 4e454f4e0105, M 92a34e454f05)
}

// The verdicts are typed, so a caller can tell the cases apart with
// errors.Is and errors.As, also through the *Error that Dial and Accept return.
func ExampleClassify_errors() {
	_, _, err := handshake.Classify([]byte{0x00, 0x00, 0x00, 0x06})
	fmt.Println(errors.Is(err, handshake.ErrPeerV6))

	_, _, err = handshake.Classify([]byte{'N', 'E', 'O', 'N', 0x02, 0x05})
	var ve *handshake.VersionError
	if errors.As(err, &ve) {
		fmt.Printf("%v peer sent version bytes % x, we send % x\n", ve.Encoding, ve.Peer, ve.Local)
	}

	// Output:
	// true
	// N peer sent version bytes 02 05, we send 01 05
}
