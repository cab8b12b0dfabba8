package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/tinylib/msgp/msgp"
)

// This file holds the msgpack leaf codecs the generated catalog is built from.
// Encoders append to a caller's buffer and never allocate beyond growing it.
// Decoders take the remaining input and return what is left after the value.

// DecodeError reports args that do not match a message's schema.
type DecodeError struct {
	Msg   string // message type name, e.g. "AskObject"
	Field string // schema field path, e.g. "node_list[3].address"; "" for the args array itself
	Err   error
}

// Error formats the failure as "proto: decode Msg.field: reason".
func (e *DecodeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("proto: decode %s: %s", e.Msg, reason(e.Err))
	}
	return fmt.Sprintf("proto: decode %s.%s: %s", e.Msg, e.Field, reason(e.Err))
}

// Unwrap returns the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Cause returns the underlying error (github.com/pkg/errors convention).
func (e *DecodeError) Cause() error { return e.Err }

// Errors found while decoding, wrapped in *DecodeError.
var (
	// ErrTruncated means the input ended inside a value.
	ErrTruncated = errors.New("proto: truncated input")
	// ErrTrailing means bytes follow the args array.
	ErrTrailing = errors.New("proto: trailing bytes after args")
)

// reason returns err's message without this package's prefix, for the error
// types that wrap it and put the prefix first, so that every message of this
// package reads "proto: ..." with the prefix exactly once.
func reason(err error) string { return strings.TrimPrefix(err.Error(), "proto: ") }

func decodeErr(msg, field string, err error) error {
	if fe, ok := err.(*fieldError); ok {
		field, err = field+"."+fe.path, fe.err
	}
	if errors.Is(err, msgp.ErrShortBytes) {
		err = ErrTruncated
	}
	return &DecodeError{Msg: msg, Field: field, Err: err}
}

// appendInt encodes v as msgpack-python does: the smallest form, with
// non-negative values as unsigned (cc/cd/ce/cf), which msgp.AppendInt64 does not do.
func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return msgp.AppendUint64(b, uint64(v))
	}
	return msgp.AppendInt64(b, v)
}

func appendP64(b []byte, v uint64) []byte {
	b = msgp.AppendBytesHeader(b, 8)
	return binary.BigEndian.AppendUint64(b, v)
}

// appendText writes s as msgpack bin: NEO/py's Py3 shims expect bin for text.
func appendText(b []byte, s string) []byte {
	b = msgp.AppendBytesHeader(b, uint32(len(s)))
	return append(b, s...)
}

// Enums travel as fixext1 `d4 <ext> <value>` (NEO/py packs int(item) into a
// one-byte ext payload). msgp's extension API goes through an interface value
// and would allocate per enum, so these three bytes are written directly.
const fixext1 = 0xd4

func appendEnum(b []byte, ext int8, v uint8) []byte {
	return append(b, fixext1, byte(ext), v)
}

func readEnum(b []byte, ext int8, n uint8) (uint8, []byte, error) {
	if len(b) < 3 {
		if len(b) > 0 && b[0] != fixext1 {
			return 0, b, fmt.Errorf("want enum ext %d, got msgpack %s", ext, msgp.NextType(b))
		}
		return 0, b, ErrTruncated
	}
	if b[0] != fixext1 {
		return 0, b, fmt.Errorf("want enum ext %d, got msgpack %s", ext, msgp.NextType(b))
	}
	if int8(b[1]) != ext {
		return 0, b, fmt.Errorf("enum ext code %d, want %d", int8(b[1]), ext)
	}
	// The payload is packb(int): a positive fixint for every defined value.
	v := b[2]
	if v >= n {
		return 0, b, fmt.Errorf("enum ext %d: value %d out of range [0, %d)", ext, v, n)
	}
	return v, b[3:], nil
}

func readInt(b []byte) (int64, []byte, error) { return msgp.ReadInt64Bytes(b) }

func readUint(b []byte, limit uint64) (uint64, []byte, error) {
	v, o, err := msgp.ReadUint64Bytes(b)
	if err != nil {
		return 0, b, err
	}
	if v > limit {
		return 0, b, fmt.Errorf("integer %d out of range [0, %d]", v, limit)
	}
	return v, o, nil
}

func readNodeID(b []byte) (NodeID, []byte, error) {
	v, o, err := msgp.ReadInt64Bytes(b)
	if err != nil {
		return 0, b, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, b, fmt.Errorf("node id %d out of int32 range", v)
	}
	return NodeID(v), o, nil
}

func readP64(b []byte) (uint64, []byte, error) {
	v, o, err := msgp.ReadBytesZC(b)
	if err != nil {
		return 0, b, err
	}
	if len(v) != 8 {
		return 0, b, fmt.Errorf("8-byte id has %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), o, nil
}

// readBin decodes a msgpack bin into dst. With alias it returns the bytes
// inside b (capacity capped at their length); otherwise it copies them into
// dst's storage when dst owns spare room (see ownedBytes), else into new
// storage.
func readBin(b []byte, dst []byte, alias bool) ([]byte, []byte, error) {
	v, o, err := msgp.ReadBytesZC(b)
	if err != nil {
		return dst, b, err
	}
	return setBytes(dst, v, alias), o, nil
}

// setBytes returns v as dst's new value: aliased, or copied as readBin says.
//
// An aliased slice has cap == len, and storage this package allocates for a
// copy always has cap > len, so a value that was last decoded with aliasing
// is never written through by a later copying decode: that would scribble
// over the input it still points into.
func setBytes(dst, v []byte, alias bool) []byte {
	if alias {
		if len(v) == 0 {
			return nil
		}
		return v[:len(v):len(v)]
	}
	if cap(dst) <= len(dst) {
		dst = nil // possibly aliased: not ours to write into
	}
	if len(v) < cap(dst) {
		return append(dst[:0], v...)
	}
	if len(v) == 0 {
		return nil
	}
	return append(make([]byte, 0, len(v)+1), v...)
}

// readText decodes a bin holding text; an unchanged value keeps its string,
// so steady-state decoding of repeated names does not allocate.
func readText(b []byte, dst string) (string, []byte, error) {
	v, o, err := msgp.ReadBytesZC(b)
	if err != nil {
		return dst, b, err
	}
	if string(v) != dst {
		dst = string(v)
	}
	return dst, o, nil
}

func readRaw(b []byte, dst Raw, alias bool) (Raw, []byte, error) {
	o, err := msgp.Skip(b)
	if err != nil {
		return dst, b, err
	}
	return setBytes(dst, b[:len(b)-len(o)], alias), o, nil
}

// isNil reports whether the next object is nil and, if so, consumes it.
func isNil(b []byte) (bool, []byte) {
	if msgp.IsNil(b) {
		return true, b[1:]
	}
	return false, b
}

// readArrayHeader reads an array header of exactly want elements.
func readArrayHeader(b []byte, want uint32) ([]byte, error) {
	n, o, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return b, err
	}
	if n != want {
		return b, fmt.Errorf("array has %d elements, want %d", n, want)
	}
	return o, nil
}

// readListHeader reads an array header of any length. Every element takes at
// least one byte, so a count larger than the remaining input is rejected here,
// before anything is allocated for it.
func readListHeader(b []byte) (int, []byte, error) {
	n, o, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return 0, b, err
	}
	if uint64(n) > uint64(len(o)) {
		return 0, b, fmt.Errorf("array of %d elements in %d bytes: %w", n, len(o), ErrTruncated)
	}
	return int(n), o, nil
}

// readMapHeader is readListHeader for maps: two objects per entry.
func readMapHeader(b []byte) (int, []byte, error) {
	n, o, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return 0, b, err
	}
	if 2*uint64(n) > uint64(len(o)) {
		return 0, b, fmt.Errorf("map of %d entries in %d bytes: %w", n, len(o), ErrTruncated)
	}
	return int(n), o, nil
}

// resize returns s with length n, reusing its storage when large enough.
func resize[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// Upper bounds of encoded sizes, for ArgsSize.
const (
	sizeNil    = 1
	sizeBool   = 1
	sizeInt    = 9
	sizeFloat  = 9
	sizeP64    = 10
	sizeEnum   = 3
	sizeHeader = 5 // array, map, bin or str header
)

// appendRaw appends a verbatim msgpack object; an empty Raw is nil.
func appendRaw(b []byte, r Raw) []byte {
	if len(r) == 0 {
		return msgp.AppendNil(b)
	}
	return append(b, r...)
}

// fieldError carries the schema path of a failing field inside a struct up to
// the message that reports it.
type fieldError struct {
	path string
	err  error
}

// Error formats the failure as "path: reason".
func (e *fieldError) Error() string { return e.path + ": " + e.err.Error() }

func fieldErr(path string, err error) error {
	if fe, ok := err.(*fieldError); ok {
		return &fieldError{path: path + "." + fe.path, err: fe.err}
	}
	return &fieldError{path: path, err: err}
}
