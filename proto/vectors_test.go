package proto

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/kylelemons/godebug/pretty"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// specVectors are the verified NEO/py master encodings of
// docs/reference.md §1.11: whole M-framed packets.
var specVectors = []struct {
	name string
	id   uint32
	msg  Msg
	hex  string
}{
	{"Ping", 0, &Ping{}, "93 00 02 90"},
	{"Pong", 0, &Pong{}, "93 00 cd 80 02 90"},
	{"CloseClient", 5, &CloseClient{}, "93 05 03 90"},
	{"ProtocolError", 3, ProtocolError("connection closed"),
		"93 03 cd 80 00 92 06 c4 11 63 6f 6e 6e 65 63 74 69 6f 6e 20 63 6c 6f 73 65 64"},
	{"Ack", 1, Ack(""), "93 01 cd 80 00 92 00 c4 00"},
	{"RequestIdentification/client", 0,
		&RequestIdentification{NodeType: Client, Name: "test"},
		"93 00 01 96 d4 04 02 c0 c0 c4 04 74 65 73 74 c0 80"},
	{"RequestIdentification/storage", 0,
		&RequestIdentification{
			NodeType:    Storage,
			UUID:        Some[NodeID](7),
			Address:     Some(Address{Host: "127.0.0.1", Port: 5000}),
			Name:        "test",
			IDTimestamp: Some(1.5),
			Extra:       []KV[string, Raw]{{Key: "new_nid", Value: Raw{0x90}}},
		},
		"93 00 01 96 d4 04 01 07 92 c4 09 31 32 37 2e 30 2e 30 2e 31 cd 13 88 c4 04 74 65 73 74 cb 3f f8 00 00 00 00 00 00 81 c4 07 6e 65 77 5f 6e 69 64 90"},
	{"AcceptIdentification", 0,
		&AcceptIdentification{NodeType: Master, UUID: Some[NodeID](-0x0fffffff), YourUUID: Some[NodeID](1)},
		"93 00 cd 80 01 93 d4 04 00 d2 f0 00 00 01 01"},
	{"AskObject", 9, &AskObject{OID: 1, Before: Some[Tid](5)},
		"93 09 20 93 c4 08 00 00 00 00 00 00 00 01 c0 c4 08 00 00 00 00 00 00 00 05"},
	{"AskLastTransaction", 0xffffffff, &AskLastTransaction{}, "93 ce ff ff ff ff 3c 90"},
}

func TestSpecVectors(t *testing.T) {
	for _, v := range specVectors {
		t.Run(v.name, func(t *testing.T) {
			want := unhex(t, v.hex)
			got, err := AppendPacket(nil, EncodingM, v.id, v.msg, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\ngot  % x\nwant % x", got, want)
			}
			p, ok, err := ParsePacket(want, EncodingM, 0)
			if err != nil || !ok {
				t.Fatalf("parse: ok=%v err=%v", ok, err)
			}
			if p.ID != v.id || p.Code != v.msg.MsgCode() || p.Size != len(want) {
				t.Fatalf("parse: id=%d code=%#x size=%d", p.ID, p.Code, p.Size)
			}
			m, err := Decode(p.Code, p.Args)
			if err != nil {
				t.Fatal(err)
			}
			if diff := pretty.Compare(v.msg, m); diff != "" {
				t.Fatalf("decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHeaderN(t *testing.T) {
	for _, tt := range []struct {
		id  uint32
		msg Msg
		hex string
	}{
		{1, &Ping{}, "00000001 0002 00000001 90"},
		{1, &Pong{}, "00000001 8002 00000001 90"},
		{2, ProtocolError("connection closed"), "00000002 8000 00000015 92 06 c4 11 636f6e6e656374696f6e20636c6f736564"},
	} {
		got, err := AppendPacket(nil, EncodingN, tt.id, tt.msg, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := unhex(t, tt.hex); !bytes.Equal(got, want) {
			t.Errorf("%s: got % x, want % x", Name(tt.msg), got, want)
		}
	}
}

func TestCatalog(t *testing.T) {
	if NumMsgs != 111 {
		t.Fatalf("catalog has %d messages, want 111", NumMsgs)
	}
	count := map[Kind]int{}
	for _, c := range Codes() {
		count[KindOf(c)]++
		m := New(c)
		if m == nil || m.MsgCode() != c {
			t.Fatalf("New(%#x) = %v", c, m)
		}
		if (KindOf(c) == KindAnswer || KindOf(c) == KindError) != IsAnswer(c) {
			t.Errorf("%s: kind %v vs answer bit", NameOf(c), KindOf(c))
		}
	}
	want := map[Kind]int{KindRequest: 37, KindErrorRequest: 8, KindNotify: 28, KindAnswer: 37, KindError: 1}
	if diff := pretty.Compare(want, count); diff != "" {
		t.Errorf("kinds (-want +got):\n%s", diff)
	}
	if a, ok := AnswerOf(32); !ok || a != 0x8020 {
		t.Errorf("AnswerOf(AskObject) = %#x, %v", a, ok)
	}
	if a, ok := AnswerOf(38); !ok || a != 0x8000 {
		t.Errorf("AnswerOf(SetNodeState) = %#x, %v", a, ok)
	}
	if NameOf(1) != "RequestIdentification" || NameOf(0x8000) != "Error" || NameOf(74) != "" {
		t.Error("NameOf")
	}
}

func TestErrorValue(t *testing.T) {
	e := ProtocolError("connection closed")
	if e.Error() != "PROTOCOL_ERROR: connection closed" {
		t.Errorf("Error() = %q", e.Error())
	}
	if Ack("").Error() != "ACK" {
		t.Errorf("Ack().Error() = %q", Ack("").Error())
	}
	if !e.Is(ProtocolError("")) || e.Is(NotReady("")) {
		t.Error("Is by code")
	}
	if CodeUndoPackError.String() != "UNDO_PACK_ERROR" || ErrorCode(99).String() != "ErrorCode(99)" {
		t.Error("ErrorCode.String")
	}
}

func TestNodeID(t *testing.T) {
	for _, tt := range []struct {
		typ  NodeType
		n    uint32
		want uint32
		str  string
	}{
		{Storage, 1, 0x00000001, "S1"},
		{Master, 2, 0xf0000002, "M2"},
		{Client, 3, 0xe0000003, "C3"},
		{Admin, 4, 0xd0000004, "A4"},
	} {
		id := MakeNodeID(tt.typ, tt.n)
		if uint32(id) != tt.want || id.String() != tt.str {
			t.Errorf("MakeNodeID(%v, %d) = %#x %q", tt.typ, tt.n, uint32(id), id)
		}
	}
}
