package main

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// decodePing parses ping's -json output: exactly one object, no unknown field.
func decodePing(t *testing.T, r result) pingJSON {
	t.Helper()
	var got pingJSON
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout %q: %v\nstderr: %s", r.stdout, err, r.stderr)
	}
	if dec.More() {
		t.Fatalf("stdout has more than one JSON object: %q", r.stdout)
	}
	return got
}

// TestPingMatrix pings serve in both encodings and modes with 1 MiB objects.
func TestPingMatrix(t *testing.T) {
	s := startServe(t)
	for _, enc := range []string{"N", "M"} {
		for _, mode := range []string{"full", "light"} {
			t.Run(enc+"/"+mode, func(t *testing.T) {
				args := []string{"ping", "-encoding", enc, "-size", "1MiB", "-n", "12", "-c", "3", "-json", s.addr}
				if mode == "light" {
					args = append(args, "-light")
				}
				r := neolink(t, 60*time.Second, nil, args...)
				mustSucceed(t, r, "ping")
				got := decodePing(t, r)
				if got.OK != 12 || got.Failed != 0 || got.NotAttempted == nil || *got.NotAttempted != 0 ||
					got.Count != 12 || got.Errors != 0 || got.Error != "" || got.Stopped != "" {
					t.Fatalf("counts: %+v", got)
				}
				if got.Min <= 0 || got.Min > got.P50 || got.P50 > got.P90 || got.P90 > got.P99 ||
					got.P99 > got.P999 || got.P999 > got.Max || got.Mean < got.Min || got.Mean > got.Max ||
					got.RPS <= 0 || got.MBps <= 0 || got.Elapsed <= 0 {
					t.Fatalf("implausible statistics %+v", got)
				}
				var n uint64
				for _, b := range got.Histogram {
					n += b.N
				}
				p := got.Params
				if n != 12 || p.Count != 12 || p.Concurrency != 3 || p.Encoding != enc || p.Request != "AskObject" ||
					p.Size == nil || *p.Size != 1<<20 || p.Light != (mode == "light") || p.Timeout != 60 {
					t.Fatalf("histogram holds %d, params %+v", n, p)
				}
			})
		}
	}
	if !strings.Contains(s.Stderr(), "up (encoding M)") || !strings.Contains(s.Stderr(), "up (encoding N)") {
		t.Errorf("serve did not log the links; stderr:\n%s", s.Stderr())
	}
}

// TestPingText checks the text report.
func TestPingText(t *testing.T) {
	s := startServe(t, "-encoding", "M")
	r := neolink(t, 60*time.Second, nil, "ping", "-encoding", "m", "-n", "300", "-c", "2", "-size", "4k", s.addr)
	mustSucceed(t, r, "ping")
	for _, want := range []string{
		"PING " + s.addr + ": M encoding, full mode, 2 conns, AskObject of 4096 bytes\n",
		"round trips: 300 ok, 0 failed, 0 not attempted, in ", "min", "mean", "stddev", "p99.9", "µs |#",
		"round trips/s, ", "MB/s of object data",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, " in 0s") {
		t.Errorf("elapsed time rounded to 0s:\n%s", r.stdout)
	}
	// More goroutines than round trips: the header says how many were used.
	r = neolink(t, 60*time.Second, nil, "ping", "-n", "3", "-c", "100", s.addr+"x")
	if r.code == 0 {
		t.Fatalf("bad address accepted: %s", r.stdout)
	}
	r = neolink(t, 60*time.Second, nil, "ping", "-encoding", "M", "-n", "3", "-c", "100", s.addr)
	mustSucceed(t, r, "ping -c 100 -n 3")
	if !strings.Contains(r.stdout, "full mode, 3 conns") {
		t.Errorf("want 3 conns:\n%s", r.stdout)
	}
}

// TestPingEncodingMismatch pings an M-only server in N.
func TestPingEncodingMismatch(t *testing.T) {
	s := startServe(t, "-encoding", "M")
	r := neolink(t, 30*time.Second, nil, "ping", "-encoding", "N", "-n", "1", s.addr)
	wantFailure(t, r, 1, "encoding mismatch")
}

// TestPingClusterMismatch checks that a refused identification fails ping.
func TestPingClusterMismatch(t *testing.T) {
	s := startServe(t, "-cluster", "alpha")
	for _, light := range []bool{false, true} {
		args := []string{"ping", "-cluster", "beta", "-n", "5", s.addr}
		if light {
			args = append(args, "-light")
		}
		r := neolink(t, 30*time.Second, nil, args...)
		wantFailure(t, r, 1, "invalid cluster name")
	}
	r := neolink(t, 30*time.Second, nil, "ping", "-cluster", "alpha", "-n", "5", s.addr)
	mustSucceed(t, r, "ping with the right cluster")
}

// TestPingAbortOID checks that a link closed mid-run stops ping at once,
// counting the round trips never attempted apart from those that failed.
func TestPingAbortOID(t *testing.T) {
	s := startServe(t, "-abort-oid", "2a")
	for _, enc := range []string{"N", "M"} {
		for _, light := range []bool{false, true} {
			args := []string{"ping", "-encoding", enc, "-size", "42", "-n", "100", "-c", "4", "-timeout", "50s", s.addr}
			if light {
				args = append(args, "-light")
			}
			r := neolink(t, 60*time.Second, nil, args...)
			wantFailure(t, r, 1, "round trips failed")
			if !strings.Contains(r.stderr, "the link went down") || !strings.Contains(r.stderr, "not attempted") {
				t.Errorf("stderr: %s", r.stderr)
			}
			if r.elapsed > 10*time.Second {
				t.Errorf("ping took %v to notice the link went down", r.elapsed)
			}
			r = neolink(t, 60*time.Second, nil, append(args, "-json")...)
			got := decodePing(t, r)
			if r.code != 1 || got.OK != 0 || got.Failed < 1 || got.Failed > 4 || got.NotAttempted == nil ||
				got.OK+got.Failed+got.CutShort+*got.NotAttempted != 100 || !strings.Contains(got.Error, "the link went down") {
				t.Errorf("status %d, %+v", r.code, got)
			}
		}
	}
	if !strings.Contains(s.Stderr(), "aborted on AskObject of oid 2a") {
		t.Errorf("serve did not log the abort; stderr:\n%s", s.Stderr())
	}
	// The server itself is unaffected.
	r := neolink(t, 30*time.Second, nil, "ping", "-size", "41", "-n", "10", s.addr)
	mustSucceed(t, r, "ping after aborts")
}

// TestPingContinue checks that -continue counts failures, dials again when
// the link goes down, and goes on.
func TestPingContinue(t *testing.T) {
	s := startServe(t, "-abort-oid", "2a")
	r := neolink(t, 60*time.Second, nil, "ping", "-continue", "-light", "-size", "42", "-n", "5", "-json", s.addr)
	got := decodePing(t, r)
	if r.code != 1 || got.OK != 0 || got.Failed != 5 || *got.NotAttempted != 0 || !got.Params.Continue {
		t.Fatalf("status %d, %+v; stderr %s", r.code, got, r.stderr)
	}
	if n := strings.Count(s.Stderr(), "aborted on AskObject"); n != 5 {
		t.Errorf("serve saw %d aborts, want 5 (one link each):\n%s", n, s.Stderr())
	}
}

// TestPingTimeout checks that -timeout bounds the run and that the round
// trips never started are not counted as failures.
func TestPingTimeout(t *testing.T) {
	s := startServe(t)
	r := neolink(t, 30*time.Second, nil, "ping", "-n", "100000000", "-light", "-timeout", "300ms", s.addr)
	wantFailure(t, r, 1, "timed out after 300ms")
	if !strings.Contains(r.stderr, " 0 failed") || !strings.Contains(r.stderr, "not attempted") {
		t.Errorf("stderr: %s", r.stderr)
	}
	if !strings.Contains(r.stdout, "(stopped by timeout)") {
		t.Errorf("no summary on stdout:\n%s", r.stdout)
	}
	if r.elapsed > 10*time.Second {
		t.Errorf("ping took %v despite -timeout 300ms", r.elapsed)
	}
}

// TestPingInterrupt checks that Ctrl-C prints the summary so far and
// exits with status 130.
func TestPingInterrupt(t *testing.T) {
	s := startServe(t)
	for i, asJSON := range []bool{false, true} {
		args := []string{"ping", "-n", "100000000", "-c", "2", s.addr}
		if asJSON {
			args = append(args, "-json")
		}
		cmd := exec.Command(neolinkBin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(s.Stderr(), " up (encoding") < i+1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatal("ping did not exit within 10s of SIGINT")
		}
		if code := cmd.ProcessState.ExitCode(); code != 130 {
			t.Fatalf("exit status %d, want 130; stderr %s", code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "interrupted: ") {
			t.Errorf("stderr: %s", stderr.String())
		}
		if asJSON {
			got := decodePing(t, result{stdout: stdout.String()})
			if got.OK == 0 || got.Failed != 0 || got.Stopped != "signal interrupt" || *got.NotAttempted == 0 {
				t.Errorf("%+v", got)
			}
		} else if !strings.Contains(stdout.String(), "(stopped by signal interrupt)") || !strings.Contains(stdout.String(), "p99.9") {
			t.Errorf("no summary:\n%s", stdout.String())
		}
	}
}

// TestPingDurationRate checks -d, -rate and -i together.
func TestPingDurationRate(t *testing.T) {
	s := startServe(t)
	r := neolink(t, 30*time.Second, nil, "ping", "-d", "600ms", "-rate", "200/s", "-i", "200ms", "-c", "2", "-json", s.addr)
	mustSucceed(t, r, "ping -d -rate -i")
	got := decodePing(t, r)
	// 200/s for 0.6 s: 120 starts at most, one per 5 ms from the start
	// (fewer on a loaded machine).
	if got.OK < 20 || got.OK > 121 || got.Failed != 0 || got.NotAttempted != nil || got.Params.Rate != 200 ||
		got.Params.Duration != 0.6 || got.Params.Count != 0 {
		t.Fatalf("%+v", got)
	}
	// Three ticks, and maybe a short last interval; a loaded machine may
	// merge two ticks into one interval.
	if len(got.Intervals) < 2 || len(got.Intervals) > 4 {
		t.Fatalf("%d intervals, want 2 to 4: %+v", len(got.Intervals), got.Intervals)
	}
	if last := got.Intervals[len(got.Intervals)-1]; got.Intervals[0].From != 0 || last.To < got.Elapsed-0.001 || last.To > got.Elapsed+0.001 {
		t.Errorf("intervals do not cover the run of %vs: %+v", got.Elapsed, got.Intervals)
	}
	var sum int64
	for _, iv := range got.Intervals {
		sum += iv.OK
	}
	if sum != got.OK {
		t.Errorf("intervals hold %d round trips, want %d", sum, got.OK)
	}
	r = neolink(t, 30*time.Second, nil, "ping", "-d", "300ms", "-i", "100ms", s.addr)
	mustSucceed(t, r, "ping -d -i")
	if n := strings.Count(r.stdout, " rt/s  mean "); n < 2 {
		t.Errorf("%d interval lines, want 2 or more:\n%s", n, r.stdout)
	}
	if strings.Contains(r.stdout, "not attempted") {
		t.Errorf("a -d run has no plan to fall short of:\n%s", r.stdout)
	}
	// -d and -n: whichever comes first ends the run, successfully.
	r = neolink(t, 30*time.Second, nil, "ping", "-d", "200ms", "-n", "100000000", "-json", s.addr)
	mustSucceed(t, r, "ping -d -n")
	if got := decodePing(t, r); got.OK == 0 || got.Failed != 0 || got.NotAttempted == nil || *got.NotAttempted == 0 || got.Stopped != "" {
		t.Errorf("%+v", got)
	}
}

// TestPingSilentPeer checks the message for a peer that accepts TCP but
// sends no NEO handshake.
func TestPingSilentPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	addr := ln.Addr().String()
	r := neolink(t, 20*time.Second, nil, "ping", "-handshake-timeout", "300ms", addr)
	wantFailure(t, r, 1, "no NEO handshake from "+addr+" within 300ms: not a NEO node, or a TLS listener")
	r = neolink(t, 20*time.Second, nil, "ping", "-handshake-timeout", "300ms", "-json", addr)
	if got := decodePing(t, r); r.code != 1 || got.OK != 0 || *got.NotAttempted != 1000 || !strings.Contains(got.Error, "no NEO handshake") {
		t.Errorf("status %d, %+v", r.code, got)
	}
}

// TestWithDefaultPort checks that ADDR gets serve's port when it has none.
func TestWithDefaultPort(t *testing.T) {
	for in, want := range map[string]string{
		"localhost": "localhost:24680", "127.0.0.1": "127.0.0.1:24680", "::1": "[::1]:24680",
		"[::1]": "[::1]:24680", "host:5551": "host:5551", "[::1]:7": "[::1]:7",
	} {
		if got := withDefaultPort(in); got != want {
			t.Errorf("withDefaultPort(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestParseSize checks sizes with units.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "4096": 4096, "4k": 4096, "4K": 4096, "4KiB": 4096, "4KB": 4000,
		"1MiB": 1 << 20, "1M": 1 << 20, "2MB": 2e6, "1.5k": 1536, "1GiB": 1 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "4q", "1.3", "-1", "4 k b"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

// TestRateFlag checks -rate values.
func TestRateFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{"1000": time.Millisecond, "1000/s": time.Millisecond,
		"50/ms": 20 * time.Microsecond, "30/m": 2 * time.Second, "5/10s": 2 * time.Second} {
		var f rateFlag
		if err := f.Set(in); err != nil || f.period != want {
			t.Errorf("-rate %s: period %v, %v; want %v", in, f.period, err, want)
		}
	}
	for _, in := range []string{"0", "-5", "x", "10/parsec", "10/0s"} {
		var f rateFlag
		if err := f.Set(in); err == nil {
			t.Errorf("-rate %s accepted", in)
		}
	}
}

// TestMaxAnswerData checks the -size limit against the encoder: the
// largest accepted size fits in a packet, one byte more does not.
func TestMaxAnswerData(t *testing.T) {
	for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
		n := maxAnswerData(enc, 64<<20)
		data := make([]byte, n+1)
		msg := func(size uint64) proto.Msg {
			return &proto.AnswerObject{OID: proto.Oid(size), Serial: 1, Compression: proto.Some(int64(0)),
				Checksum: make([]byte, 20), Data: data[:size]}
		}
		if _, err := proto.AppendPacket(nil, enc, 1<<31, msg(n), proto.MaxPacketSize); err != nil {
			t.Errorf("%v: %d bytes do not fit: %v", enc, n, err)
		}
		if _, err := proto.AppendPacket(nil, enc, 1<<31, msg(n+1), proto.MaxPacketSize); err == nil {
			t.Errorf("%v: %d bytes fit, but the limit is %d", enc, n+1, n)
		}
	}
}

// TestCheckObject checks the AnswerObject rules ping applies to any peer.
func TestCheckObject(t *testing.T) {
	data := bytes.Repeat([]byte("neo "), 250)
	sum := sha1.Sum(data)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(data)
	zw.Close()
	zsum := sha1.Sum(z.Bytes())
	for _, tc := range []struct {
		name string
		a    proto.AnswerObject
		want string // "" for ok
	}{
		{"plain", proto.AnswerObject{OID: 1000, Compression: proto.Some(int64(0)), Checksum: sum[:], Data: data}, ""},
		{"zlib", proto.AnswerObject{OID: 1000, Compression: proto.Some(int64(1)), Checksum: zsum[:], Data: z.Bytes()}, ""},
		{"zlib, checksum of the uncompressed data", proto.AnswerObject{OID: 1000, Compression: proto.Some(int64(1)), Checksum: sum[:], Data: z.Bytes()}, "checksum"},
		{"oid", proto.AnswerObject{OID: 999, Checksum: sum[:], Data: data}, "oid"},
		{"checksum", proto.AnswerObject{OID: 1000, Checksum: zsum[:], Data: data}, "checksum"},
		{"length", proto.AnswerObject{OID: 1000, Checksum: sha1Of(data[:999]), Data: data[:999]}, "999 bytes of data, want 1000"},
		{"undone", proto.AnswerObject{OID: 1000, Checksum: make([]byte, 20)}, "no data"},
		{"compression", proto.AnswerObject{OID: 1000, Compression: proto.Some(int64(7)), Checksum: sum[:], Data: data}, "unknown compression 7"},
	} {
		err := checkObject(&tc.a, 1000)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// sha1Of returns the SHA-1 of b as a slice.
func sha1Of(b []byte) []byte {
	s := sha1.Sum(b)
	return s[:]
}
