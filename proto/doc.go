// Package proto is the NEO protocol v5 message catalog and its two wire framings.
//
// The catalog (every packet of NEO/py master's protocol v5, 111 in all) is generated
// from schema/neo-v5.schema by internal/gen; `go generate ./proto/...` reproduces
// the committed zcatalog.go byte for byte. Each message is a Go struct named as
// NEO/py names the packet (RequestIdentification, AskObject, AnswerObject, Error,
// ...) that implements Msg: it appends its msgpack args to a caller's buffer with
// no allocation, and decodes them back from a byte slice.
//
// Two framings carry a message on a byte stream (see Encoding):
//
//   - M: NEO/py master's stream, one msgpack array [msg_id, msg_code, args] per
//     packet with no length prefix. Byte-exact with NEO/py.
//   - N: a 10-byte big-endian header (id u32, code u16, payload length u32)
//     followed by the same msgpack args. The fast framing for Go↔Go links.
//
// PacketReader reads framed packets from an io.Reader with read-ahead into one
// reusable buffer, and exposes (id, code) without decoding args, so a link layer
// can route packets without touching their payload. Every length is checked
// against the maximum packet size before anything is allocated for it.
//
// Large payloads (object data, up to 64 MiB) can travel without copies:
//
//   - Out: AppendPacketSG encodes into a caller's buffer all but the bin
//     fields above a threshold (16 KiB by default), which it records in a
//     Segments; Segments.WriteBuffers writes them with one writev, byte for
//     byte what AppendPacket would have buffered.
//   - In: PacketReader.SetLendThreshold makes the reader read a large packet
//     into a buffer of its own and give it away (Packet.Lent) instead of
//     growing its read-ahead buffer; DecodeArgsAlias decodes with []byte
//     fields pointing into the args; Recycle gives the buffer back.
//   - Keeping: every message has Clone, a deep copy that shares no memory.
//
// Every error this package creates reads "proto: ...", with the prefix once.
//
// proto imports nothing else from this module.
package proto
