package bench

import (
	"fmt"

	"github.com/neolink/neolink/proto"
)

// Sizes of the N-framed packets of a NodeLink round trip, so that the
// byte-stream variants of the *-4KiB benchmarks carry the same bytes as
// NodeLink's. Only proto is used here (not neonet), so these build with
// -tags nolinkbench too. OIDs and serials are fixed-size on the wire, so the
// sizes do not depend on the sequence number.

// askPacketSizeN is the size of an N-framed AskObject{OID}.
func askPacketSizeN() int { return packetSizeN(&proto.AskObject{OID: 1}) }

// answerPacketSizeN is the size of an N-framed AnswerObject{OID, Serial,
// Data: data bytes}.
func answerPacketSizeN(data int) int {
	return packetSizeN(&proto.AnswerObject{OID: 1, Serial: 1, Data: make([]byte, data)})
}

func packetSizeN(msg proto.Msg) int {
	b, err := proto.AppendPacket(nil, proto.EncodingN, 1, msg, proto.MaxPacketSize)
	if err != nil {
		panic(fmt.Sprintf("bench: encoding %T: %v", msg, err))
	}
	return len(b)
}
