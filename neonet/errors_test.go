package neonet

import (
	"errors"
	"io"
	"testing"

	pkgerrors "github.com/pkg/errors"

	"github.com/neolink/neolink/proto"
)

// Our error types work with both errors.Is/As (Unwrap) and
// github.com/pkg/errors.Cause (Cause).
func TestErrorChains(t *testing.T) {
	a, _ := linkPair(t, transports[0], proto.EncodingN, nil)
	for _, err := range []error{
		&ConnError{Link: a, ConnID: 3, Op: "recv", Err: io.ErrUnexpectedEOF},
		&LinkError{Link: a, Op: "accept", Err: io.ErrUnexpectedEOF},
		&proto.DecodeError{Msg: "Ping", Err: io.ErrUnexpectedEOF},
		&proto.FrameError{Offset: 7, Err: io.ErrUnexpectedEOF},
	} {
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%T: errors.Is does not find the cause", err)
		}
		if pkgerrors.Cause(err) != io.ErrUnexpectedEOF {
			t.Errorf("%T: pkg/errors.Cause = %v", err, pkgerrors.Cause(err))
		}
	}
	c, _ := a.NewConn()
	c.Close()
	err := c.Send(&proto.Ping{})
	if err.Error() != a.String()+" .1: send: neonet: connection is closed" {
		t.Errorf("message %q", err)
	}
}
