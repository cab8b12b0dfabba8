package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Reading hex text for decode: bare hex, `xxd` and `hexdump -C` dumps of
// one stream, and `tcpdump -X` (or -x) output of a TCP session, from which
// the TCP payload of each direction is taken.

// looksLikeHexText reports whether data is text made of hex digits, as a
// hex dump is, rather than a binary stream: a raw NEO stream starts with
// non-printable bytes (the N handshake's zeros, the M handshake's 0x92).
func looksLikeHexText(data []byte) bool {
	t := bytes.TrimSpace(data)
	if len(t) < 2 {
		return false
	}
	digits := 0
	for _, c := range t {
		switch {
		case c >= 0x80 || c < 0x20 && !unicode.IsSpace(rune(c)):
			return false
		case isHexDigit(c):
			digits++
		}
	}
	return isHexDigit(t[0]) && digits*2 >= len(t)
}

// isHexDigit reports whether c is 0-9, a-f or A-F.
func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// segment is the TCP payload of one captured packet.
type segment struct {
	dir  string // "SRC > DST", as tcpdump prints it
	data []byte
}

// parseHexInput decodes hex text. A tcpdump -X session gives one segment
// per TCP packet with a payload; any other form gives one segment with
// dir "" holding the whole stream.
func parseHexInput(text []byte) ([]segment, error) {
	lines := strings.Split(strings.ReplaceAll(string(text), "\r\n", "\n"), "\n")
	if isTcpdump(lines) {
		return parseTcpdump(lines)
	}
	hexdumpC := false
	for _, l := range lines {
		if strings.Contains(l, "|") {
			hexdumpC = true
			break
		}
	}
	var digits strings.Builder
	for n, l := range lines {
		h, err := dumpLineHex(l, hexdumpC)
		if err != nil {
			return nil, fmt.Errorf("bad hex input, line %d: %v", n+1, err)
		}
		digits.WriteString(h)
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		return nil, fmt.Errorf("bad hex input: %w", err)
	}
	return []segment{{data: b}}, nil
}

// dumpLineHex returns the hex digits of one line of bare hex, xxd, tcpdump
// -X without headers, or hexdump -C: without the offset column and the
// ASCII column.
func dumpLineHex(l string, hexdumpC bool) (string, error) {
	l = strings.TrimRight(l, " \t")
	if hexdumpC {
		if i := strings.IndexByte(l, '|'); i >= 0 {
			l = l[:i]
		}
		f := strings.Fields(l)
		if len(f) > 0 && len(f[0]) >= 7 && allHex(f[0]) {
			f = f[1:] // the offset; a last line holding only it ends the dump
		}
		return strings.Join(f, ""), nil
	}
	t := strings.TrimLeft(l, " \t")
	if i := strings.Index(t, ":"); i > 0 && allHex(strings.TrimPrefix(t[:i], "0x")) {
		// xxd "00000010: 0102 ...  ASCII", tcpdump "0x0010:  0102 ...  ASCII"
		t = strings.TrimLeft(t[i+1:], " \t")
		if j := strings.Index(t, "  "); j >= 0 {
			t = t[:j]
		}
	}
	var sb strings.Builder
	for _, r := range t {
		switch {
		case unicode.IsSpace(r):
		case r < 0x80 && isHexDigit(byte(r)):
			sb.WriteRune(r)
		default:
			return "", fmt.Errorf("%q is not a hex digit", r)
		}
	}
	return sb.String(), nil
}

// allHex reports whether s is non-empty and all hex digits.
func allHex(s string) bool {
	for i := range len(s) {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// isTcpdump reports whether lines are tcpdump output: a packet line
// ("... IP A > B: Flags ...") followed by indented "0x0000:" lines.
func isTcpdump(lines []string) bool {
	for i := 0; i+1 < len(lines); i++ {
		if tcpdumpDir(lines[i]) != "" && strings.HasPrefix(strings.TrimLeft(lines[i+1], " \t"), "0x0000:") {
			return true
		}
	}
	return false
}

// tcpdumpDir returns "SRC > DST" of a tcpdump packet line, or "".
func tcpdumpDir(l string) string {
	if l == "" || l[0] == ' ' || l[0] == '\t' {
		return ""
	}
	for _, proto := range []string{" IP ", " IP6 "} {
		if i := strings.Index(l, proto); i >= 0 {
			rest := l[i+len(proto):]
			if j := strings.Index(rest, ": "); j > 0 && strings.Contains(rest[:j], " > ") {
				return rest[:j]
			}
		}
	}
	return ""
}

// parseTcpdump returns the TCP payloads of a tcpdump -X session, in
// capture order, without retransmitted bytes.
func parseTcpdump(lines []string) ([]segment, error) {
	type pkt struct {
		dir  string
		line int
		hex  strings.Builder
	}
	var pkts []*pkt
	for n, l := range lines {
		if dir := tcpdumpDir(l); dir != "" {
			pkts = append(pkts, &pkt{dir: dir, line: n + 1})
			continue
		}
		if strings.TrimSpace(l) == "" {
			continue
		}
		if len(pkts) == 0 {
			return nil, fmt.Errorf("tcpdump input, line %d: hex before the first packet line", n+1)
		}
		h, err := dumpLineHex(l, false)
		if err != nil {
			return nil, fmt.Errorf("tcpdump input, line %d: %v", n+1, err)
		}
		pkts[len(pkts)-1].hex.WriteString(h)
	}
	next := make(map[string]uint32) // the next sequence number expected, by direction
	var segs []segment
	for _, p := range pkts {
		b, err := hex.DecodeString(p.hex.String())
		if err != nil {
			return nil, fmt.Errorf("tcpdump input, packet at line %d: %v", p.line, err)
		}
		seq, syn, payload, err := tcpPayload(b)
		if err != nil {
			return nil, fmt.Errorf("tcpdump input, packet at line %d: %v", p.line, err)
		}
		want, seen := next[p.dir]
		switch {
		case syn:
			next[p.dir] = seq + 1
			continue
		case !seen:
			return nil, fmt.Errorf("tcpdump input, packet at line %d: the capture misses the start of %s (no SYN)", p.line, p.dir)
		case len(payload) == 0:
			continue
		}
		if d := int32(want - seq); d > 0 { // retransmitted bytes
			if int(d) >= len(payload) {
				continue
			}
			payload, seq = payload[d:], want
		}
		if seq != want {
			return nil, fmt.Errorf("tcpdump input, packet at line %d: %d bytes of %s are missing from the capture", p.line, seq-want, p.dir)
		}
		next[p.dir] = seq + uint32(len(payload))
		segs = append(segs, segment{dir: p.dir, data: payload})
	}
	if len(segs) == 0 && len(pkts) > 0 {
		return nil, errors.New("tcpdump input: no TCP payload (capture with -X, or -XX without a link-layer header)")
	}
	return segs, nil
}

// tcpPayload parses an IPv4 or IPv6 packet holding TCP and returns its
// sequence number, whether it is a SYN, and its payload.
func tcpPayload(b []byte) (seq uint32, syn bool, payload []byte, err error) {
	if len(b) < 1 {
		return 0, false, nil, errors.New("empty packet")
	}
	var tcp []byte
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if len(b) < 20 || ihl < 20 || len(b) < ihl {
			return 0, false, nil, errors.New("truncated IPv4 header (was it captured with -XX? use -X)")
		}
		if b[9] != 6 {
			return 0, false, nil, fmt.Errorf("IP protocol %d, not TCP", b[9])
		}
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if total < ihl || total > len(b) {
			return 0, false, nil, errors.New("IPv4 length beyond the captured bytes (capture with -s 0)")
		}
		tcp = b[ihl:total]
	case 6:
		if len(b) < 40 {
			return 0, false, nil, errors.New("truncated IPv6 header")
		}
		if b[6] != 6 {
			return 0, false, nil, fmt.Errorf("IPv6 next header %d, not TCP", b[6])
		}
		end := 40 + int(binary.BigEndian.Uint16(b[4:6]))
		if end > len(b) {
			return 0, false, nil, errors.New("IPv6 length beyond the captured bytes (capture with -s 0)")
		}
		tcp = b[40:end]
	default:
		return 0, false, nil, errors.New("not an IP packet (was it captured with -XX? use -X)")
	}
	if len(tcp) < 20 {
		return 0, false, nil, errors.New("truncated TCP header")
	}
	off := int(tcp[12]>>4) * 4
	if off < 20 || off > len(tcp) {
		return 0, false, nil, errors.New("bad TCP header length")
	}
	return binary.BigEndian.Uint32(tcp[4:8]), tcp[13]&0x02 != 0, tcp[off:], nil
}
