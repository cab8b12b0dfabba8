//go:build linux

package neo_test

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// objectSizes are the AskObject sizes of the neo.lib tests, up to 60 MiB
// (NEO/py cannot receive a packet over 64 MiB).
var objectSizes = []int{0, 1, 1000, 65536, 1 << 20, 16 << 20, 60 << 20}

// patternData is what both `neolink serve` and neopy.py node-serve answer
// for AskObject(oid): oid & 0xffffffff bytes, byte i = i % 251.
func patternData(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n && i < 251; i++ {
		b[i] = byte(i)
	}
	for done := min(n, 251); done < n; done *= 2 { // the period is 251: double the prefix
		copy(b[done:], b[:done])
	}
	return b
}

// TestNEOpyClientToServe: a NEO/py client made of neo.lib's ClientConnection,
// EventManager and an EventHandler identifies to `neolink serve`, pings it
// and asks objects up to 60 MiB, plain and with NEO/py's TLS.
func TestNEOpyClientToServe(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"serve", "-listen", "127.0.0.1:0", "-cluster", env.cluster}
			pyArgs := []string{"node-client", "--cluster", env.cluster}
			if tc.tls {
				args = append(args, tlsArgs("-")...)
				pyArgs = append(pyArgs, tlsArgs("--")...)
			}
			addr := startListening(t, command(t, env.neolink, args...))
			sizes := make([]string, len(objectSizes))
			for i, n := range objectSizes {
				sizes[i] = strconv.Itoa(n)
			}
			out, err := helper(t, 120*time.Second, append(pyArgs, "--addr", addr, "--sizes", strings.Join(sizes, ","))...)
			if err != nil {
				t.Fatalf("NEO/py client: %v\noutput:\n%s", err, out)
			}
			checkClientOutput(t, out)
		})
	}
}

// checkClientOutput checks node-client's JSON lines: AcceptIdentification
// from a master that gave us a client id, Pong, then every size correct.
func checkClientOutput(t *testing.T, out string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2+len(objectSizes) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), 2+len(objectSizes), out)
	}
	acc := lines[0]
	if acc["packet"] != "AcceptIdentification" || acc["node_type"] != "MASTER" ||
		int32(acc["your_uuid"].(float64))>>24 != -0x20 {
		t.Errorf("identification answer %v: want MASTER giving us a CLIENT id", acc)
	}
	if lines[1]["packet"] != "Pong" {
		t.Errorf("ping answer %v, want Pong", lines[1])
	}
	for i, n := range objectSizes {
		l := lines[2+i]
		if l["ok"] != true || int(l["len"].(float64)) != n {
			t.Errorf("AskObject(%d): %v", n, l)
		}
	}
}

// TestGoToNEOpyNode: a Go client dials a NEO/py listening node made of
// neo.lib's ListeningConnection and an EventHandler, identifies, pings and
// asks objects up to 60 MiB, plain and with NEO/py's TLS, on one full-mode
// conn and with Ask1 (a fresh id per request, as NEO/py's own clients do).
func TestGoToNEOpyNode(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			pyArgs := []string{env.helper, "node-serve", "--cluster", env.cluster}
			cfg := neonet.DefaultConfig()
			cfg.Encoding = proto.EncodingM
			if tc.tls {
				pyArgs = append(pyArgs, tlsArgs("--")...)
				cfg.TLS = tlsConfig(t)
			}
			addr := startListening(t, command(t, env.python, pyArgs...))
			ctx := ctxT(t, 60*time.Second)
			link, err := neonet.DialLink(ctx, "tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer link.Close()
			conn, err := link.NewConn()
			if err != nil {
				t.Fatal(err)
			}
			var acc proto.AcceptIdentification
			req := &proto.RequestIdentification{NodeType: proto.Client, Name: env.cluster}
			if err := conn.AskContext(ctx, req, &acc); err != nil {
				t.Fatal(err)
			}
			if acc.NodeType != proto.Storage || acc.UUID.V != proto.MakeNodeID(proto.Storage, 1) ||
				acc.YourUUID.V != proto.MakeNodeID(proto.Client, 1) {
				t.Errorf("AcceptIdentification %+v, want STORAGE S1 giving us C1", acc)
			}
			if err := conn.AskContext(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			for i, n := range objectSizes {
				var ans proto.AnswerObject
				req := &proto.AskObject{OID: proto.Oid(n)}
				if i%2 == 0 {
					err = conn.AskContext(ctx, req, &ans)
				} else {
					err = link.Ask1Context(ctx, req, &ans)
				}
				if err != nil {
					t.Fatalf("AskObject(%d): %v", n, err)
				}
				sum := sha1.Sum(ans.Data)
				if ans.OID != proto.Oid(n) || len(ans.Data) != n || !bytes.Equal(sum[:], ans.Checksum) ||
					!bytes.Equal(ans.Data, patternData(n)) {
					t.Errorf("AskObject(%d): oid %v, %d bytes, checksum match %v", n, ans.OID, len(ans.Data), bytes.Equal(sum[:], ans.Checksum))
				}
			}

			// NEO/py answers a request its handler has no method for with a
			// PROTOCOL_ERROR, then aborts the connection.
			err = conn.AskContext(ctx, &proto.AskLastTransaction{}, &proto.AnswerLastTransaction{})
			var pe *proto.Error
			if !errors.As(err, &pe) || pe.Code != proto.CodeProtocolError {
				t.Fatalf("unexpected request: %v, want a PROTOCOL_ERROR", err)
			}
			t.Logf("unexpected request: %v", err)
			err = conn.AskContext(ctxT(t, 10*time.Second), &proto.Ping{}, &proto.Pong{})
			if err == nil {
				t.Fatal("Ping after NEO/py closed the link succeeded")
			}
			// The link's failure is reported as such on every later call,
			// with its cause.
			if !errors.Is(err, neonet.ErrLinkDown) {
				t.Fatalf("next call after NEO/py's Error-then-close: %v, want an error matching ErrLinkDown", err)
			}
		})
	}
}
