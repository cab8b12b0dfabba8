package handshake

import (
	"bytes"
	"errors"
	"testing"

	"github.com/neolink/neolink/proto"
)

// clientHello is the start of a TLS 1.2 ClientHello record as crypto/tls
// sends it: content type 0x16, version 0301, length, handshake type 1.
var clientHello = []byte{0x16, 0x03, 0x01, 0x00, 0xf8, 0x01, 0x00, 0x00, 0xf4, 0x03, 0x03}

// tlsAlert is a fatal protocol_version alert record (level 2, description
// 70), which a TLS server may send on reading a plain NEO handshake.
var tlsAlert = []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46}

func TestBytes(t *testing.T) {
	for enc, want := range map[proto.Encoding]string{
		proto.EncodingN: "NEON\x01\x05",
		proto.EncodingM: "\x92\xa3NEO\x05",
	} {
		b := Bytes(enc)
		if string(b) != want || len(b) != Size {
			t.Errorf("Bytes(%v) = %x, want %x", enc, b, want)
		}
		b[0] = 0
		if string(Bytes(enc)) != want {
			t.Errorf("Bytes(%v) shares its result", enc)
		}
	}
	if b := Bytes(0); b != nil {
		t.Errorf("Bytes(0) = %x", b)
	}
	if Bytes(proto.EncodingN)[0] == Bytes(proto.EncodingM)[0] {
		t.Error("N and M handshakes start with the same byte")
	}
}

func TestClassify(t *testing.T) {
	type want struct {
		enc  proto.Encoding
		more int
		err  any // nil, a sentinel error, or a pointer to an error type for errors.As
	}
	var (
		ve *VersionError
		ne *NotNEOError
	)
	cases := []struct {
		in   string
		want want
	}{
		{"", want{more: 4}},
		{"N", want{more: 5}},
		{"NEON", want{more: 2}},
		{"NEON\x01", want{more: 1}},
		{"NEON\x01\x05", want{enc: proto.EncodingN}},
		{"NEON\x01\x05\x00\x00\x00\x01", want{enc: proto.EncodingN}},
		{"NEON\x01\x06", want{err: &ve}},
		{"NEON\x00\x05", want{err: &ve}},
		{"\x92", want{more: 5}},
		{"\x92\xa3NEO", want{more: 1}},
		{"\x92\xa3NEO\x05", want{enc: proto.EncodingM}},
		{"\x92\xa3NEO\x05\x93\x00\x01\x90", want{enc: proto.EncodingM}},
		{"\x92\xa3NEO\x06", want{err: &ve}},
		{"\x00", want{more: 3}},
		{"\x00\x00\x00", want{more: 1}},
		{"\x00\x00\x00\x06", want{err: ErrPeerV6}},
		{"\x00\x00\x00\x06NEON\x01\x05", want{err: ErrPeerV6}},
		{"\x00\x00\x00\x07", want{err: &ne}},
		{"\x00\x01", want{err: &ne}},
		{"\x16", want{err: ErrPeerTLS}},
		{string(clientHello), want{err: ErrPeerTLS}},
		{"\x15", want{err: ErrPeerTLSAlert}},
		{string(tlsAlert), want{err: ErrPeerTLSAlert}},
		{"NEOX", want{err: &ne}},
		{"\x92\xa4", want{err: &ne}},
		{"G", want{err: &ne}},
		{"GET / HTTP/1.1", want{err: &ne}},
	}
	for _, tc := range cases {
		enc, more, err := Classify([]byte(tc.in))
		ok := enc == tc.want.enc && more == tc.want.more
		switch w := tc.want.err.(type) {
		case nil:
			ok = ok && err == nil
		case error:
			ok = ok && errors.Is(err, w)
		default:
			ok = ok && errors.As(err, w)
		}
		if !ok {
			t.Errorf("Classify(%x) = %v, %d, %v; want %v, %d, %v", tc.in, enc, more, err, tc.want.enc, tc.want.more, tc.want.err)
		}
	}
}

// TestClassifyCopies: errors keep their own copy of the bytes, so that a
// caller may reuse its read buffer.
func TestClassifyCopies(t *testing.T) {
	for _, in := range []string{"GET /", "NEON\x01\x06"} {
		b := []byte(in)
		_, _, err := Classify(b)
		msg := err.Error()
		for i := range b {
			b[i] = 'z'
		}
		if err.Error() != msg {
			t.Errorf("error for %q changed with the input: %q, then %q", in, msg, err)
		}
	}
}

// FuzzClassify checks, for any input, the properties receive relies on:
// Classify never asks to read past an accepted handshake or past the 4 bytes
// a NEO/go 2020 peer sends, it decides once and for all (more bytes never
// change a verdict), and it accepts only the exact handshakes.
func FuzzClassify(f *testing.F) {
	f.Add(Bytes(proto.EncodingN))
	f.Add(Bytes(proto.EncodingM))
	f.Add(append(Bytes(proto.EncodingM), 0x93, 0x00, 0x01, 0x90))
	f.Add(handshakeV6[:])
	f.Add(clientHello)
	f.Add(tlsAlert)
	f.Add([]byte("NEON\x02\x05"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		enc, more, err := Classify(in)
		switch {
		case more < 0 || len(in)+more > Size && more > 0:
			t.Fatalf("more = %d for %d bytes", more, len(in))
		case more > 0:
			if enc != 0 || err != nil {
				t.Fatalf("undecided but returned %v, %v", enc, err)
			}
			return
		case err == nil:
			if !enc.Valid() || !bytes.Equal(in[:Size], Bytes(enc)) {
				t.Fatalf("accepted %x as %v", in, enc)
			}
		case enc != 0:
			t.Fatalf("returned %v with %v", enc, err)
		}

		// Find where the verdict was reached, and check that every
		// shorter prefix was undecided and asked for no byte beyond it.
		decidedAt := 0
		for ; decidedAt <= len(in); decidedAt++ {
			if _, m, _ := Classify(in[:decidedAt]); m == 0 {
				break
			}
		}
		e2, _, err2 := Classify(in[:decidedAt])
		if e2 != enc || !sameVerdict(err, err2) {
			t.Fatalf("verdict at %d bytes (%v, %v) differs from the verdict on %d bytes (%v, %v)",
				decidedAt, e2, err2, len(in), enc, err)
		}
		safe := err == nil || errors.Is(err, ErrPeerV6)
		for k := 0; safe && k < decidedAt; k++ {
			if _, m, _ := Classify(in[:k]); k+m > decidedAt {
				t.Fatalf("after %d bytes asked for %d more, past the handshake end at %d", k, m, decidedAt)
			}
		}
	})
}

// sameVerdict compares two Classify errors. A *NotNEOError keeps what it
// was given (up to Size bytes), so a longer input may show more bytes; the
// verdict is the same if the shorter Prefix starts the longer one.
func sameVerdict(a, b error) bool {
	var na, nb *NotNEOError
	if errors.As(a, &na) && errors.As(b, &nb) {
		return bytes.HasPrefix(na.Prefix, nb.Prefix) || bytes.HasPrefix(nb.Prefix, na.Prefix)
	}
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}
