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

// TestDecodeDumps decodes xxd, hexdump -C and tcpdump -X output, and
// refuses hex text given without -hex with a hint.
func TestDecodeDumps(t *testing.T) {
	c := capture(t, proto.EncodingM)
	var xxd, hexdumpC strings.Builder
	for off := 0; off < len(c.stream); off += 16 {
		line := c.stream[off:min(off+16, len(c.stream))]
		fmt.Fprintf(&xxd, "%08x: ", off)
		fmt.Fprintf(&hexdumpC, "%08x ", off)
		var ascii strings.Builder
		for i := range 16 {
			if i < len(line) {
				fmt.Fprintf(&xxd, "%02x", line[i])
				fmt.Fprintf(&hexdumpC, " %02x", line[i])
				ch := line[i]
				if ch < 0x20 || ch > 0x7e {
					ch = '.'
				}
				ascii.WriteByte(ch)
			} else {
				xxd.WriteString("  ")
				hexdumpC.WriteString("   ")
			}
			if i%2 == 1 {
				xxd.WriteByte(' ')
			}
			if i == 7 {
				hexdumpC.WriteByte(' ')
			}
		}
		fmt.Fprintf(&xxd, " %s\n", ascii.String())
		fmt.Fprintf(&hexdumpC, "  |%s|\n", ascii.String())
	}
	fmt.Fprintf(&hexdumpC, "%08x\n", len(c.stream))
	for name, text := range map[string]string{"xxd": xxd.String(), "hexdump -C": hexdumpC.String()} {
		r := neolink(t, 10*time.Second, strings.NewReader(text), "decode", "-hex")
		mustSucceed(t, r, "decode -hex of "+name)
		checkLines(t, r.stdout, c.lines)
		r = neolink(t, 10*time.Second, strings.NewReader(text), "decode")
		wantFailure(t, r, 2, "the input looks like hex text: add -hex")
	}
	r := neolink(t, 10*time.Second, strings.NewReader(hex.EncodeToString(c.stream)), "decode")
	wantFailure(t, r, 2, "the input looks like hex text: add -hex")
}

// TestDecodeSampleCapture decodes the NEO/py session shipped in
// docs/capture, as docs/cli.md shows it.
func TestDecodeSampleCapture(t *testing.T) {
	r := neolink(t, 10*time.Second, nil, "decode", "-hex", "../../docs/capture/neopy-master-ping.txt")
	mustSucceed(t, r, "decode of the sample capture")
	checkLines(t, r.stdout, []string{
		"# -> is 127.0.0.1.54624 to 127.0.0.1.24731, <- the other way",
		`-> id=1 code=0x0001 RequestIdentification {NodeType:CLIENT UUID:None Address:None Name:"test" IDTimestamp:None Extra:[]}`,
		"<- id=1 code=0x8001 AcceptIdentification {NodeType:MASTER UUID:M1 YourUUID:C1}",
		"<- id=0 code=0x0006 NotifyNodeInformation {Timestamp:1796225407.3627903 NodeList:[{Type:CLIENT Address:None UUID:C1 State:RUNNING",
		"<- id=1 code=0x000a SendPartitionTable {PTID:1 NumReplicas:0 RowList:[[{UUID:S1 State:UP_TO_DATE}]",
		"-> id=3 code=0x0002 Ping {}", "<- id=3 code=0x8002 Pong {}",
		"-> id=3 code=0x0002 Ping {}", "<- id=3 code=0x8002 Pong {}",
		"-> id=3 code=0x0002 Ping {}", "<- id=3 code=0x8002 Pong {}",
	})
}

// TestParseTcpdump checks retransmissions, gaps and foreign input.
func TestParseTcpdump(t *testing.T) {
	// An IPv4+TCP packet from port 1 to port 2 with seq and payload.
	pkt := func(seq uint32, syn bool, payload string) string {
		b := make([]byte, 40, 40+len(payload))
		b[0], b[9] = 0x45, 6
		total := 40 + len(payload)
		b[2], b[3] = byte(total>>8), byte(total)
		b[20+4], b[20+5], b[20+6], b[20+7] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
		b[20+12] = 5 << 4
		if syn {
			b[20+13] = 0x02
		}
		b = append(b, payload...)
		var sb strings.Builder
		sb.WriteString("12:00:00.000000 IP 10.0.0.1.1 > 10.0.0.2.2: Flags [P.], length 0\n")
		for off := 0; off < len(b); off += 16 {
			fmt.Fprintf(&sb, "\t0x%04x:  %x  ascii\n", off, b[off:min(off+16, len(b))])
		}
		return sb.String()
	}
	segs, err := parseHexInput([]byte(pkt(99, true, "") + pkt(100, false, "abc") + pkt(100, false, "abcde") + pkt(105, false, "f")))
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, s := range segs {
		got = append(got, s.data...)
		if s.dir != "10.0.0.1.1 > 10.0.0.2.2" {
			t.Errorf("dir %q", s.dir)
		}
	}
	if string(got) != "abcdef" {
		t.Errorf("stream %q, want abcdef (retransmission dropped)", got)
	}
	if _, err := parseHexInput([]byte(pkt(99, true, "") + pkt(103, false, "x"))); err == nil || !strings.Contains(err.Error(), "3 bytes of 10.0.0.1.1 > 10.0.0.2.2 are missing") {
		t.Errorf("gap: %v", err)
	}
	if _, err := parseHexInput([]byte(pkt(100, false, "x"))); err == nil || !strings.Contains(err.Error(), "no SYN") {
		t.Errorf("no SYN: %v", err)
	}
}
