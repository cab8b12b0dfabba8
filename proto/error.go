package proto

// Error implements the Go error interface: "CODE" or "CODE: message",
// e.g. "PROTOCOL_ERROR: connection closed". An *Error is a message of the
// peer, not a failure of this package, so it has no "proto: " prefix.
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Message
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, proto.NotReady("")) matches any NOT_READY answer.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}
