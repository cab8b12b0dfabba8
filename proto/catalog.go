package proto

import (
	"errors"
	"fmt"
)

type catalogEntry struct {
	code   uint16
	name   string
	kind   Kind
	answer uint16
}

// NumMsgs is the number of messages in the catalog.
const NumMsgs = len(catalog)

// Codes returns the code of every message in the catalog, in schema order.
func Codes() []uint16 {
	codes := make([]uint16, len(catalog))
	for i, e := range catalog {
		codes[i] = e.code
	}
	return codes
}

// NameOf returns the NEO/py name of the message with code, or "" if unknown.
func NameOf(code uint16) string {
	if i := catalogIndex(code); i >= 0 {
		return catalog[i].name
	}
	return ""
}

// KindOf classifies code; KindUnknown if it is not in the catalog.
func KindOf(code uint16) Kind {
	if i := catalogIndex(code); i >= 0 {
		return catalog[i].kind
	}
	return KindUnknown
}

// AnswerOf returns the code of the answer to the request with code: its
// dedicated answer, or 0x8000 (Error) for error-answered requests. ok is false
// for codes that are not requests.
func AnswerOf(code uint16) (answer uint16, ok bool) {
	if i := catalogIndex(code); i >= 0 && catalog[i].answer != 0 {
		return catalog[i].answer, true
	}
	return 0, false
}

// ErrUnknownCode is returned for a packet code that is not in the catalog.
var ErrUnknownCode = errors.New("proto: unknown message code")

// Decode decodes args of the message with code into a new message.
func Decode(code uint16, args []byte) (Msg, error) {
	m := New(code)
	if m == nil {
		return nil, fmt.Errorf("%w %d (%#04x)", ErrUnknownCode, code, code)
	}
	if err := m.DecodeArgs(args); err != nil {
		return nil, err
	}
	return m, nil
}

// Name returns the NEO/py name of msg's type.
func Name(msg Msg) string { return NameOf(msg.MsgCode()) }
