package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/proto"
)

// The snippets of README.md and docs/cli.md are checked here, so that they
// cannot drift from the code: the Go program is built and run against
// neolink ping, the Python script runs against neolink serve, and every
// neolink command line parses.

// repoRoot is the repository root, from this package's directory.
const repoRoot = "../.."

// fencedBlocks returns the bodies of the ```lang blocks of a Markdown file.
func fencedBlocks(t *testing.T, file, lang string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, file))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur *strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && line == "```"+lang:
			cur = new(strings.Builder)
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no ```%s block", file, lang)
	}
	return blocks
}

// TestREADMEGoProgram builds the README's Go program and pings it with
// neolink ping in full and light mode, with Ping and AskObject.
func TestREADMEGoProgram(t *testing.T) {
	blocks := fencedBlocks(t, "README.md", "go")
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(blocks[0]), 0o666); err != nil {
		t.Fatal(err)
	}
	// The program is built as a package of this module that exists only in
	// an overlay, so that it imports neonet and proto as a user's would.
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	virtual := filepath.Join(root, "cmd", "neolink", "readmeexample", "main.go")
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {virtual: src}})
	ovFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovFile, overlay, 0o666); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "example")
	build := exec.Command("go", "build", "-overlay", ovFile, "-o", bin, "./readmeexample")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the README's Go program does not build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatalf("the README program printed nothing; stderr: %s", stderr.String())
		}
		return ""
	}
	addr, ok := strings.CutPrefix(next(), "listening on ")
	if !ok {
		t.Fatalf("first line is not \"listening on ADDR\"; stderr: %s", stderr.String())
	}
	if l := next(); l != `object 7: "hello"` {
		t.Fatalf("second line %q; stderr: %s", l, stderr.String())
	}
	for _, args := range [][]string{
		{"-n", "50", "-c", "2"},
		{"-n", "50", "-light"},
		{"-n", "20", "-size", "5", "-encoding", "M"},
		{"-n", "20", "-size", "5", "-light", "-c", "4"},
	} {
		r := neolink(t, 30*time.Second, nil, append(append([]string{"ping"}, args...), addr)...)
		mustSucceed(t, r, "ping "+strings.Join(args, " ")+" against the README program")
	}
}

// TestREADMEPython runs the README's Python script against neolink serve,
// with PYTHONPATH as the README says.
func TestREADMEPython(t *testing.T) {
	if os.Getenv("NEOLINK_INTEROP") == "" {
		t.Skip("Python snippet: needs python3-msgpack; run via `make test` or `make interop` (sets NEOLINK_INTEROP=1)")
	}
	py := os.Getenv("PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	script := filepath.Join(t.TempDir(), "script.py")
	if err := os.WriteFile(script, []byte(fencedBlocks(t, "README.md", "python")[0]), 0o666); err != nil {
		t.Fatal(err)
	}
	s := startServe(t)
	host, port, _ := strings.Cut(s.addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, script, host, port)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(repoRoot, "interop", "py"))
	out, err := cmd.CombinedOutput()
	// serve answers oid 7 with the bytes 0, 1, ... 6.
	if err != nil || !strings.Contains(string(out), `b'\x00\x01\x02\x03\x04\x05\x06'`) {
		t.Fatalf("README Python script: %v\n%s", err, out)
	}
}

// TestDocCommandLines checks that every neolink command line shown in the
// README and docs/cli.md parses: each is run with -h appended, which
// parses the flags before it and then prints the help.
func TestDocCommandLines(t *testing.T) {
	cmdLine := regexp.MustCompile(`^(?:\$ )?neolink ([^#]*)`)
	n := 0
	for _, file := range []string{"README.md", "docs/cli.md"} {
		for _, block := range fencedBlocks(t, file, "sh") {
			for _, line := range strings.Split(block, "\n") {
				m := cmdLine.FindStringSubmatch(strings.TrimSpace(line))
				if m == nil || strings.Contains(m[1], "|") {
					continue
				}
				args := strings.Fields(m[1])
				n++
				r := neolink(t, 10*time.Second, nil, append(args, "-h")...)
				if r.code != 0 {
					t.Errorf("%s: %q does not parse: %s", file, line, r.stderr)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d neolink command lines found", n)
	}
}

// TestProtocolDocExamples decodes every packet shown in hex in
// docs/protocol.md: the N examples block and the tables' byte columns.
// Each must be exactly one packet of the message the row or title names.
func TestProtocolDocExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	hexRun := regexp.MustCompile("`((?:[0-9a-f]{2} +)*[0-9a-f]{2})`")
	hexLine := regexp.MustCompile(`^(?:[0-9a-f]{2} +)*[0-9a-f]{2}$`)
	check := func(where, hexText, context string, encs ...proto.Encoding) {
		t.Helper()
		data, err := hex.DecodeString(strings.Join(strings.Fields(hexText), ""))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if enc, _, _ := handshake.Classify(data); enc != 0 || len(data) < 4 {
			return // a handshake, not a packet
		}
		var errs []string
		for _, enc := range encs { // any one of encs
			p, ok, err := proto.ParsePacket(data, enc, 0)
			if err != nil || !ok || p.Size != len(data) {
				errs = append(errs, fmt.Sprintf("%v: not one whole packet (ok=%v, err=%v)", enc, ok, err))
				continue
			}
			msg, err := proto.Decode(p.Code, p.Args)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%v: %v", enc, err))
				continue
			}
			if name := proto.Name(msg); !strings.Contains(context, name) && !strings.Contains(context, "→") {
				errs = append(errs, fmt.Sprintf("%v: decodes as %s, which %q does not name", enc, name, context))
				continue
			}
			return
		}
		t.Errorf("%s: %s: %s", where, hexText, strings.Join(errs, "; "))
	}
	n := 0
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		where := fmt.Sprintf("docs/protocol.md:%d", i+1)
		switch {
		case strings.HasPrefix(line, "|"):
			runs := hexRun.FindAllStringSubmatch(line, -1)
			if len(runs) == 0 {
				continue
			}
			var all []string
			for _, r := range runs {
				all = append(all, r[1])
			}
			// Packet rows: N rows say so, M packets are arrays of 3 (93 ...);
			// the other tables show handshakes and single values.
			text := strings.Join(all, " ")
			switch {
			case strings.Contains(line, "| N |"):
				check(where, text, line, proto.EncodingN)
			case strings.HasPrefix(text, "93 "):
				check(where, text, line, proto.EncodingM)
			default:
				continue
			}
			n++
		case hexLine.MatchString(strings.TrimSpace(line)) && i > 0 && strings.Contains(lines[i-1], ", id "):
			// The N examples: a title "Name..., id N", then the bytes.
			n++
			check(where, line, lines[i-1], proto.EncodingN)
		}
	}
	if n < 14 {
		t.Errorf("found %d hex examples in docs/protocol.md, want at least 14", n)
	}
}
