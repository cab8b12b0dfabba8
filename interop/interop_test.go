// Package interop_test holds the Go side of the Go↔Python interop matrix:
// Go links against the Python peer library (interop/py) as server and as
// client. The Python-driven side, including the cells with the neolink
// binary, is interop/py/tests/test_matrix.py.
//
// These tests need Debian's python3 with python3-msgpack; `make test` and
// `make interop` install it and set NEOLINK_INTEROP=1. Without that
// variable they are skipped with a message; with it, a missing Python fails.
package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func python(t *testing.T) string {
	t.Helper()
	if os.Getenv("NEOLINK_INTEROP") == "" {
		t.Skip("Go↔Python interop: run via `make test` or `make interop` (sets NEOLINK_INTEROP=1)")
	}
	py := os.Getenv("PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	if out, err := exec.Command(py, "-c", "import msgpack").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import msgpack (apt-get install python3-msgpack): %v %s", py, err, out)
	}
	return py
}

func pyDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "py")
}

// startPyServer runs the Python serve command and returns its address.
func startPyServer(t *testing.T, py string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, py, append([]string{"-m", "neolinkpy", "serve", "--listen", "127.0.0.1:0", "--cluster", "neo"}, args...)...)
	cmd.Dir = pyDir(t)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		addr, ok := strings.CutPrefix(strings.TrimSpace(s), "listening on ")
		if !ok {
			t.Fatalf("python serve printed %q", s)
		}
		return addr
	case <-time.After(20 * time.Second):
		t.Fatal("python serve did not start")
		return ""
	}
}

func objectData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func identify(t *testing.T, link *neonet.NodeLink, cluster string) error {
	t.Helper()
	c, err := link.NewConn()
	if err != nil {
		return err
	}
	defer c.Close()
	var acc proto.AcceptIdentification
	err = c.Ask(&proto.RequestIdentification{NodeType: proto.Client, Name: cluster}, &acc)
	if err == nil && (acc.NodeType != proto.Master || !acc.YourUUID.Valid || acc.YourUUID.V != proto.MakeNodeID(proto.Client, 1)) {
		return fmt.Errorf("bad AcceptIdentification %+v", acc)
	}
	return err
}

// TestGoClientPythonServer: a Go link against the Python server, in both
// encodings and both modes.
func TestGoClientPythonServer(t *testing.T) {
	py := python(t)
	for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
		for _, light := range []bool{false, true} {
			mode := map[bool]string{false: "full", true: "light"}[light]
			t.Run(enc.String()+"/"+mode, func(t *testing.T) {
				addr := startPyServer(t, py, "--encoding", "auto", "--abort-oid", "dead")
				cfg := neonet.DefaultConfig()
				cfg.Encoding = enc
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				link, err := neonet.DialLink(ctx, "tcp", addr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer link.Close()
				if err := identify(t, link, "neo"); err != nil {
					t.Fatalf("identification: %v", err)
				}
				c, err := link.NewConn()
				if err != nil {
					t.Fatal(err)
				}
				ask := func(req, resp proto.Msg) error {
					if light {
						return link.Ask1Context(ctx, req, resp)
					}
					return c.AskContext(ctx, req, resp)
				}
				if err := ask(&proto.Ping{}, &proto.Pong{}); err != nil {
					t.Fatalf("ping: %v", err)
				}
				var obj proto.AnswerObject
				if err := ask(&proto.AskObject{OID: 1 << 20}, &obj); err != nil {
					t.Fatalf("1 MiB object: %v", err)
				}
				sum := sha1.Sum(obj.Data)
				if !bytes.Equal(obj.Data, objectData(1<<20)) || !bytes.Equal(obj.Checksum, sum[:]) {
					t.Fatal("1 MiB object: wrong data or checksum")
				}
				var pe *proto.Error
				if err := ask(&proto.AskLastTransaction{}, &proto.AnswerLastTransaction{}); !errors.As(err, &pe) || pe.Code != proto.CodeProtocolError {
					t.Fatalf("unhandled request: err = %v, want a PROTOCOL_ERROR answer", err)
				}
				// 1000 concurrent conns (or light asks) on one link.
				var wg sync.WaitGroup
				errs := make(chan error, 1000)
				for i := range 1000 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var r proto.AnswerObject
						var err error
						if light {
							err = link.Ask1Context(ctx, &proto.AskObject{OID: proto.Oid(i % 64)}, &r)
						} else {
							var cc *neonet.Conn
							if cc, err = link.NewConn(); err == nil {
								err = cc.AskContext(ctx, &proto.AskObject{OID: proto.Oid(i % 64)}, &r)
								cc.Close()
							}
						}
						if err == nil && len(r.Data) != i%64 {
							err = fmt.Errorf("conn %d: %d bytes", i, len(r.Data))
						}
						if err != nil {
							errs <- err
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatalf("concurrent: %v", err)
				}
				// The peer closes abruptly mid-exchange: the ask fails, nothing hangs.
				start := time.Now()
				if err := ask(&proto.AskObject{OID: 0xdead}, &obj); err == nil {
					t.Fatal("ask survived the peer's abort")
				}
				if time.Since(start) > 10*time.Second {
					t.Fatal("abort was not noticed promptly")
				}
				select {
				case <-link.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("link not down after the peer's abort")
				}
			})
		}
	}
}

// TestPythonClientGoServer: the Python ping client against a Go server.
func TestPythonClientGoServer(t *testing.T) {
	py := python(t)
	ll, err := neonet.ListenLink("tcp", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { ll.Close(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			link, err := ll.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer link.Close(); serveMaster(link, &wg) }()
		}
	}()
	for _, enc := range []string{"N", "M"} {
		for _, light := range []bool{false, true} {
			args := []string{"-m", "neolinkpy", "ping", "-n", "1000", "-c", "50", "--size", "4096", "--encoding", enc, "--cluster", "neo", "--json"}
			if light {
				args = append(args, "--light")
			}
			args = append(args, ll.Addr().String())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			cmd := exec.CommandContext(ctx, py, args...)
			cmd.Dir = pyDir(t)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			cancel()
			if err != nil {
				t.Fatalf("%s light=%v: python ping: %v\n%s", enc, light, err, stderr.String())
			}
			var res struct {
				Count, Errors int
				RPS           float64
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("ping output %q: %v", out, err)
			}
			if res.Count != 1000 || res.Errors != 0 {
				t.Fatalf("%s light=%v: %+v", enc, light, res)
			}
			t.Logf("python client → go server, %s light=%v: %.0f round trips/s", enc, light, res.RPS)
		}
	}
}

// serveMaster answers like `neolink serve`: identification, Ping, AskObject.
func serveMaster(link *neonet.NodeLink, wg *sync.WaitGroup) {
	for {
		c, err := link.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for {
				m, err := c.Recv()
				if err != nil {
					return
				}
				var ans proto.Msg
				switch m := m.(type) {
				case *proto.RequestIdentification:
					ans = &proto.AcceptIdentification{NodeType: proto.Master,
						UUID: proto.Some(proto.MakeNodeID(proto.Master, 1)), YourUUID: proto.Some(proto.MakeNodeID(m.NodeType, 1))}
				case *proto.Ping:
					ans = &proto.Pong{}
				case *proto.AskObject:
					data := objectData(int(m.OID & 0xffffffff))
					sum := sha1.Sum(data)
					ans = &proto.AnswerObject{OID: m.OID, Serial: 1, Compression: proto.Some[int64](0), Checksum: sum[:], Data: data}
				default:
					ans = proto.ProtocolError("unexpected packet " + proto.Name(m))
				}
				if c.Send(ans) != nil {
					return
				}
			}
		}()
	}
}
