package proto

import (
	"encoding/binary"
	"fmt"
)

// Oid is a ZODB object id. On the wire it is an 8-byte msgpack bin, big-endian.
type Oid uint64

// Tid is a ZODB transaction id. On the wire it is an 8-byte msgpack bin, big-endian.
type Tid uint64

// String formats the id as 16 hex digits, as NEO and ZODB print them.
func (o Oid) String() string { return fmt.Sprintf("%016x", uint64(o)) }

// String formats the id as 16 hex digits, as NEO and ZODB print them.
func (t Tid) String() string { return fmt.Sprintf("%016x", uint64(t)) }

// P64 returns the 8-byte big-endian form of v (NEO/py p64).
func P64(v uint64) [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b
}

// NodeID is a NEO node id (NEO/py "uuid"): a signed 32-bit value whose high byte
// is the namespace of the node type (UUID_NAMESPACES), e.g. M1 = 0xf0000001.
type NodeID int32

// Node id namespaces (NEO/py UUID_NAMESPACES), as the high byte of a NodeID.
const (
	nsStorage = 0x00
	nsMaster  = -0x10
	nsClient  = -0x20
	nsAdmin   = -0x30
)

// MakeNodeID returns the id number n in the namespace of node type t
// (STORAGE 1 = 0x00000001 "S1", MASTER 1 = 0xf0000001 "M1", CLIENT 1 = "C1", ADMIN 1 = "A1").
// n must fit in 24 bits.
func MakeNodeID(t NodeType, n uint32) NodeID {
	var ns int32
	switch t {
	case Master:
		ns = nsMaster
	case Client:
		ns = nsClient
	case Admin:
		ns = nsAdmin
	default:
		ns = nsStorage
	}
	return NodeID(ns<<24 | int32(n&0xffffff))
}

// String formats the id as NEO does: "S1", "M2", "C3", "A4"; other values as "?(v)".
func (id NodeID) String() string {
	prefix := map[int32]string{nsStorage: "S", nsMaster: "M", nsClient: "C", nsAdmin: "A"}[int32(id)>>24]
	if prefix == "" || id == 0 {
		return fmt.Sprintf("?(%d)", int32(id))
	}
	return fmt.Sprintf("%s%d", prefix, int32(id)&0xffffff)
}

// Opt is an optional value (schema "?T"): nil on the wire when !Valid.
// The zero Opt is None.
type Opt[T any] struct {
	V     T
	Valid bool
}

// Some returns an Opt holding v.
func Some[T any](v T) Opt[T] { return Opt[T]{V: v, Valid: true} }

// None returns an empty Opt.
func None[T any]() Opt[T] { return Opt[T]{} }

// Get returns the value and whether it is present.
func (o Opt[T]) Get() (T, bool) { return o.V, o.Valid }

// KV is one entry of a schema map "{K:V}". Maps are kept as ordered slices of
// entries so that decoding then encoding reproduces the peer's bytes exactly.
type KV[K, V any] struct {
	Key   K
	Value V
}

// Raw is one msgpack object kept verbatim (schema "any"). Encoding appends it
// unchanged; decoding checks it is exactly one well-formed object and copies it.
type Raw []byte
