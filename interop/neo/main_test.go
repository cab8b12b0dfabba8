//go:build linux

// Package neo_test runs neolink against real NEO/py nodes: a NEO/py cluster
// (master + SQLite storage) that NEO/py's ZODB client filled, and small
// NEO/py nodes built from neo.lib's connection classes. `make interop-neo`
// starts them (interop/neo/neopy.py run) and passes their addresses in the
// environment; without NEO_MASTER every test here is skipped with one line.
package neo_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// env is what the harness exports.
var env struct {
	master, tlsMaster, cluster string
	manifest, tlsManifest      string
	ca, cert, key              string
	python, helper, neolink    string
}

func TestMain(m *testing.M) {
	env.master = os.Getenv("NEO_MASTER")
	if env.master == "" {
		fmt.Println("interop/neo: skipped: no NEO/py cluster (NEO_MASTER unset); run `make interop-neo`")
		os.Exit(0)
	}
	env.tlsMaster = os.Getenv("NEO_TLS_MASTER")
	env.cluster = os.Getenv("NEO_CLUSTER")
	env.manifest = os.Getenv("NEO_MANIFEST")
	env.tlsManifest = os.Getenv("NEO_TLS_MANIFEST")
	env.ca, env.cert, env.key = os.Getenv("NEO_CA"), os.Getenv("NEO_CERT"), os.Getenv("NEO_KEY")
	env.python, env.helper = os.Getenv("NEO_PYTHON"), os.Getenv("NEO_HELPER")
	env.neolink = os.Getenv("NEOLINK_BIN")
	for name, v := range map[string]string{
		"NEO_TLS_MASTER": env.tlsMaster, "NEO_CLUSTER": env.cluster, "NEO_MANIFEST": env.manifest,
		"NEO_TLS_MANIFEST": env.tlsManifest, "NEO_CA": env.ca, "NEO_CERT": env.cert, "NEO_KEY": env.key,
		"NEO_PYTHON": env.python, "NEO_HELPER": env.helper, "NEOLINK_BIN": env.neolink,
	} {
		if v == "" {
			fmt.Fprintf(os.Stderr, "interop/neo: NEO_MASTER is set but %s is not: run the tests through `make interop-neo`\n", name)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

// revision is one revision of an object as NEO/py's client loaded it.
type revision struct {
	Serial proto.Tid
	Data   []byte
}

// object is one committed object of the manifest.
type object struct {
	Name      string
	OID       proto.Oid
	Revisions []revision // oldest first
}

// manifest is what the harness committed, as NEO/py's client loads it back.
type manifest struct {
	LastTID proto.Tid
	Objects map[string]*object
}

// manifests caches loadManifest's results by path: the tests share them
// read-only.
var manifests sync.Map

// loadManifest reads the harness's JSON manifest.
func loadManifest(t *testing.T, path string) *manifest {
	t.Helper()
	if m, ok := manifests.Load(path); ok {
		return m.(*manifest)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		LastTID string `json:"last_tid"`
		Objects map[string]struct {
			OID       string `json:"oid"`
			Revisions []struct {
				Serial string `json:"serial"`
				Data   string `json:"data"`
			} `json:"revisions"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	m := &manifest{LastTID: proto.Tid(hex64(t, raw.LastTID)), Objects: map[string]*object{}}
	for name, o := range raw.Objects {
		obj := &object{Name: name, OID: proto.Oid(hex64(t, o.OID))}
		for _, r := range o.Revisions {
			obj.Revisions = append(obj.Revisions, revision{Serial: proto.Tid(hex64(t, r.Serial)), Data: unhex(t, r.Data)})
		}
		m.Objects[name] = obj
	}
	manifests.Store(path, m)
	return m
}

// hex64 parses a 16-digit hex id.
func hex64(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatalf("bad hex id %q: %v", s, err)
	}
	return v
}

// unhex decodes hex data.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tlsConfig is the TLS configuration for the TLS cluster and nodes.
func tlsConfig(t *testing.T) *tls.Config {
	t.Helper()
	cfg, err := neonet.TLSConfig(env.ca, env.cert, env.key, false)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tlsArgs are the -ca/-cert/-key (or --ca/--cert/--key) arguments.
func tlsArgs(dash string) []string {
	return []string{dash + "ca", env.ca, dash + "cert", env.cert, dash + "key", env.key}
}

// ctxT returns a context that ends after d or with the test.
func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// command returns a command in its own process group that is killed (with
// its group) when the test ends or this process dies.
func command(t *testing.T, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = &logWriter{t: t, prefix: name}
	return cmd
}

// killGroup ends cmd's process group and reaps cmd.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
}

// helper runs neopy.py with args and returns its stdout.
func helper(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	cmd := command(t, env.python, append([]string{env.helper}, args...)...)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(timeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return out.String(), fmt.Errorf("neopy.py %s: timed out after %v", args[0], timeout)
	}
}

// startListening starts cmd, which prints "listening on ADDR" first, and
// returns ADDR. The process is killed when the test ends.
func startListening(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	stdin, err := cmd.StdinPipe() // closing it tells neopy.py node-serve to exit
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		killGroup(cmd)
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		addr, found := strings.CutPrefix(l, "listening on ")
		if !ok || !found {
			t.Fatalf("%s: first line %q, want \"listening on ADDR\"", cmd.Path, l)
		}
		return addr
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no \"listening on\" line within 20s", cmd.Path)
	}
	return ""
}

// logWriter sends a subprocess's stderr to the test log, a line at a time.
// exec calls Write from one goroutine, which ends before Wait returns.
type logWriter struct {
	t      *testing.T
	prefix string
	buf    []byte
}

// Write logs the complete lines of p and keeps the rest for later.
func (w *logWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Logf("%s: %s", filepath.Base(w.prefix), w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}
