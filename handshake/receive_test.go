package handshake

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/neolink/neolink/proto"
)

// TestReceiveReadsNoMore feeds receive through readers that split and merge
// data differently, and checks that it never consumes a byte past the
// handshake, or past the 4 bytes of a NEO/go 2020 peer.
func TestReceiveReadsNoMore(t *testing.T) {
	const tail = "\x93\x00\x01\x90 packets"
	cases := []struct {
		in   []byte
		enc  proto.Encoding
		err  error
		used int
	}{
		{append(Bytes(proto.EncodingN), tail...), proto.EncodingN, nil, Size},
		{append(Bytes(proto.EncodingM), tail...), proto.EncodingM, nil, Size},
		{append(handshakeV6[:], tail...), 0, ErrPeerV6, len(handshakeV6)},
	}
	wrappers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one-byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
	}
	for _, tc := range cases {
		for name, wrap := range wrappers {
			src := bytes.NewReader(tc.in)
			var got int
			enc, err := receive(wrap(src), &got)
			if enc != tc.enc || !errors.Is(err, tc.err) {
				t.Errorf("%s %x: got %v, %v; want %v, %v", name, tc.in[:4], enc, err, tc.enc, tc.err)
			}
			if used := len(tc.in) - src.Len(); used != tc.used || got != tc.used {
				t.Errorf("%s %x: consumed %d bytes, counted %d, want %d", name, tc.in[:4], used, got, tc.used)
			}
		}
	}
}

// TestReceiveDataWithEOF: bytes that arrive together with io.EOF still
// count, both when they decide and when they fall short.
func TestReceiveDataWithEOF(t *testing.T) {
	cases := []struct {
		in   string
		want error
	}{
		{"\x00\x00\x00\x06", ErrPeerV6},
		{"NEON\x01\x05", nil},
		{"NEON\x01", io.ErrUnexpectedEOF},
		{"", io.EOF},
	}
	for _, tc := range cases {
		_, err := receive(iotest.DataErrReader(bytes.NewReader([]byte(tc.in))), new(int))
		if !errors.Is(err, tc.want) || tc.want == io.EOF && errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%x: got %v, want %v", tc.in, err, tc.want)
		}
	}
}

// TestReceiveReadError passes other read errors through unchanged.
func TestReceiveReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := receive(io.MultiReader(bytes.NewReader([]byte("NEO")), iotest.ErrReader(boom)), new(int))
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want %v", err, boom)
	}
}
