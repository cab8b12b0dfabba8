package proto

// Msg is one NEO message: a packet's code and its typed arguments.
//
// Every type in the generated catalog implements Msg with a pointer receiver.
// Methods must not be called concurrently on the same value while it is being
// decoded into.
type Msg interface {
	// MsgCode returns the packet code. Answers have AnswerBit set; Error is 0x8000.
	MsgCode() uint16

	// ArgsSize returns an upper bound of len(AppendArgs(nil)), computed without
	// encoding; used to check size limits and reserve space before encoding.
	ArgsSize() int

	// AppendArgs appends the msgpack encoding of the args array to b and returns
	// the extended buffer. It allocates only when b lacks capacity.
	AppendArgs(b []byte) []byte

	// DecodeArgs decodes a msgpack args array that fills data exactly into the
	// receiver, overwriting every field. Decoded values never alias data:
	// byte slices, strings and lists are copied, reusing storage the receiver
	// got from an earlier decode, so decoding the same shape again does not
	// allocate. Byte slices that may alias other memory (those set by
	// DecodeArgsAlias, or by the caller with no spare capacity) are replaced,
	// never written through. Malformed input yields a *DecodeError; the
	// receiver's contents are then unspecified.
	//
	// Messages with []byte fields also have DecodeArgsAlias (see the package
	// function of that name), those with bin fields AppendArgsSG (see
	// AppendPacketSG), and every message has a Clone method returning a deep
	// copy of its own type.
	DecodeArgs(data []byte) error
}

// AnswerBit marks answer codes (NEO/py RESPONSE_MASK). Error is AnswerBit itself.
const AnswerBit = 0x8000

// IsAnswer reports whether code is an answer or Error.
func IsAnswer(code uint16) bool { return code&AnswerBit != 0 }

// Kind classifies a packet code.
type Kind uint8

const (
	// KindUnknown is the Kind of a code that is not in the catalog.
	KindUnknown Kind = iota
	// KindRequest is a request with a dedicated answer (its code | AnswerBit).
	KindRequest
	// KindErrorRequest is a request answered only by Error (ACK on success).
	KindErrorRequest
	// KindNotify is a notification: no answer is expected.
	KindNotify
	// KindAnswer is the answer to a request.
	KindAnswer
	// KindError is the Error packet, which may answer any request.
	KindError
)

var kindNames = [...]string{"unknown", "request", "error-answered request", "notification", "answer", "error"}

// String returns a lower-case description of k.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}
