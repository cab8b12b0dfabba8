package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// TestCodecRoundTrip pipes codec-random into codec-echo: the lines must come back unchanged.
func TestCodecRoundTrip(t *testing.T) {
	r := neolink(t, 30*time.Second, nil, "codec-random", "--seed", "42", "--per-type", "5")
	mustSucceed(t, r, "codec-random")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 5*proto.NumMsgs {
		t.Fatalf("%d lines, want %d", len(lines), 5*proto.NumMsgs)
	}
	var codes []uint16
	for _, l := range lines {
		code, hexArgs, ok := strings.Cut(l, " ")
		n, err := strconv.ParseUint(code, 10, 16)
		if !ok || err != nil || hexArgs == "" || strings.ToLower(hexArgs) != hexArgs {
			t.Fatalf("bad line %q", l)
		}
		if len(codes) == 0 || codes[len(codes)-1] != uint16(n) {
			codes = append(codes, uint16(n))
		}
	}
	if !slices.Equal(codes, proto.Codes()) {
		t.Errorf("codes %v, want the catalog's in order", codes)
	}

	echo := neolink(t, 30*time.Second, strings.NewReader(r.stdout), "codec-echo")
	mustSucceed(t, echo, "codec-echo")
	if echo.stdout != r.stdout {
		t.Fatalf("codec-echo changed the messages:\n%s", firstDiff(r.stdout, echo.stdout))
	}

	again := neolink(t, 30*time.Second, nil, "codec-random", "-seed", "42", "-per-type", "5")
	if again.stdout != r.stdout {
		t.Error("codec-random is not deterministic for a seed")
	}
}

// TestCodecEchoErrors checks codec-echo on lines it cannot decode.
func TestCodecEchoErrors(t *testing.T) {
	in := "1 zz\n\n32 93c40800\n5\n2 90\n65535 90\n"
	r := neolink(t, 10*time.Second, strings.NewReader(in), "codec-echo")
	mustSucceed(t, r, "codec-echo")
	want := []string{
		"1 ERROR bad line: bad hex",
		"32 ERROR proto: decode AskObject.oid: truncated input",
		"5 ERROR bad line: want 'CODE HEXARGS'",
		"2 90",
		"65535 ERROR proto: unknown message code 65535 (0xffff)",
	}
	if got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// firstDiff shows the first line where a and b differ.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i) + ":\n  " + al[i] + "\n  " + bl[i]
		}
	}
	return "lengths differ"
}
