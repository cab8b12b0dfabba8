package proto

import "fmt"

// Encoding names a wire framing: EncodingN or EncodingM.
type Encoding byte

const (
	// EncodingN is the 10-byte-header framing: id u32, code u16, payload length
	// u32 (all big-endian), then the msgpack args.
	EncodingN Encoding = 'N'
	// EncodingM is NEO/py master's framing: one msgpack array
	// [msg_id, msg_code, args] per packet, no length prefix.
	EncodingM Encoding = 'M'
)

// String returns "N" or "M", or a description of an invalid value.
func (e Encoding) String() string {
	switch e {
	case EncodingN, EncodingM:
		return string(rune(e))
	}
	return fmt.Sprintf("Encoding(%#x)", byte(e))
}

// Valid reports whether e is EncodingN or EncodingM.
func (e Encoding) Valid() bool { return e == EncodingN || e == EncodingM }

// ParseEncoding parses "N" or "M" (either case).
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "N", "n":
		return EncodingN, nil
	case "M", "m":
		return EncodingM, nil
	}
	return 0, fmt.Errorf("proto: unknown encoding %q (want N or M)", s)
}
