package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/proto"
)

// captured is a stream to decode and what decode must print for it.
type captured struct {
	stream  []byte   // with the handshake
	offsets []int    // stream offset of each packet
	lines   []string // the start of each output line
}

// capture builds a stream of a few packets in enc, handshake first.
func capture(t *testing.T, enc proto.Encoding) captured {
	t.Helper()
	c := captured{stream: handshake.Bytes(enc)}
	data := bytes.Repeat([]byte{0xab}, 100)
	for i, m := range []proto.Msg{
		&proto.RequestIdentification{NodeType: proto.Client, Name: "neo"},
		&proto.AcceptIdentification{NodeType: proto.Master, UUID: proto.Some(proto.MakeNodeID(proto.Master, 1)), YourUUID: proto.Some(proto.MakeNodeID(proto.Client, 1))},
		&proto.Ping{},
		&proto.AskObject{OID: 100},
		&proto.AnswerObject{OID: 100, Serial: 1, Compression: proto.Some(int64(0)), Checksum: make([]byte, 20), Data: data},
		proto.ProtocolError("unexpected packet AskLastIDs"),
	} {
		c.offsets = append(c.offsets, len(c.stream))
		var err error
		id := uint32(2*i + 1)
		if c.stream, err = proto.AppendPacket(c.stream, enc, id, m, 0); err != nil {
			t.Fatal(err)
		}
		c.lines = append(c.lines, fmt.Sprintf("id=%d code=%#04x %s {", id, m.MsgCode(), proto.Name(m)))
	}
	return c
}

// checkLines checks that out has exactly the lines of want, by prefix.
func checkLines(t *testing.T, out string, want []string) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if out == "" {
		got = nil
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d: %q, want it to start with %q", i, got[i], want[i])
		}
	}
}

// TestDecode decodes raw and hex captures, with and without handshake.
func TestDecode(t *testing.T) {
	dir := t.TempDir()
	for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
		t.Run(enc.String(), func(t *testing.T) {
			c := capture(t, enc)
			raw := filepath.Join(dir, enc.String()+".bin")
			if err := os.WriteFile(raw, c.stream, 0o666); err != nil {
				t.Fatal(err)
			}
			r := neolink(t, 10*time.Second, nil, "decode", raw)
			mustSucceed(t, r, "decode")
			checkLines(t, r.stdout, c.lines)
			for _, want := range []string{`Name:"neo"`, "UUID:M1 YourUUID:C1", "OID:0000000000000064", "Compression:0",
				"Data:" + strings.Repeat("ab", 32) + "...(100 bytes)", "NextSerial:None", "Code:PROTOCOL_ERROR"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("no %q in:\n%s", want, r.stdout)
				}
			}

			// Hex text on stdin, with whitespace, and an explicit encoding.
			text := hex.EncodeToString(c.stream)
			var spaced strings.Builder
			for i := 0; i < len(text); i += 16 {
				spaced.WriteString(text[i:min(i+16, len(text))])
				spaced.WriteString(" \n\t"[i/16%3 : i/16%3+1])
			}
			r = neolink(t, 10*time.Second, strings.NewReader(spaced.String()), "decode", "-hex", "-encoding", enc.String(), "-")
			mustSucceed(t, r, "decode -hex")
			checkLines(t, r.stdout, c.lines)

			// No handshake: auto fails, an explicit encoding works.
			noHS := filepath.Join(dir, enc.String()+".nohs")
			if err := os.WriteFile(noHS, c.stream[handshake.Size:], 0o666); err != nil {
				t.Fatal(err)
			}
			wantFailure(t, neolink(t, 10*time.Second, nil, "decode", noHS), 1, "give -encoding N or M")
			r = neolink(t, 10*time.Second, nil, "decode", "-encoding", enc.String(), noHS)
			mustSucceed(t, r, "decode without handshake")
			checkLines(t, r.stdout, c.lines)
		})
	}
}

// TestDecodeMalformed checks the output and the offset reported for bad streams.
func TestDecodeMalformed(t *testing.T) {
	for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
		t.Run(enc.String(), func(t *testing.T) {
			c := capture(t, enc)
			last := len(c.offsets) - 1
			// Truncated: the last packet lacks its final byte.
			r := neolink(t, 10*time.Second, bytes.NewReader(c.stream[:len(c.stream)-1]), "decode")
			wantFailure(t, r, 1, "error at offset "+strconv.Itoa(c.offsets[last])+": truncated packet")
			checkLines(t, r.stdout, c.lines[:last])

			// Args that do not match the schema: AskObject's oid is 7 bytes.
			bad := proto.AppendPacketArgs(bytes.Clone(c.stream[:c.offsets[1]]), enc, 9, 0x0020,
				[]byte{0x93, 0xc4, 7, 0, 0, 0, 0, 0, 0, 1, 0xc0, 0xc0})
			r = neolink(t, 10*time.Second, bytes.NewReader(bad), "decode")
			wantFailure(t, r, 1, "error at offset "+strconv.Itoa(c.offsets[1])+": proto: decode AskObject.oid")
			checkLines(t, r.stdout, append(c.lines[:1:1], "id=9 code=0x0020 AskObject"))
		})
	}
	// A stream whose handshake announces another protocol version.
	hs := handshake.Bytes(proto.EncodingM)
	hs[len(hs)-1]++
	r := neolink(t, 10*time.Second, bytes.NewReader(hs), "decode")
	wantFailure(t, r, 1, "error at offset 0: handshake: encoding M: protocol version mismatch")
}
