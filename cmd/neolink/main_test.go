package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// neolinkBin is the neolink binary built once by TestMain; the tests run
// it as a subprocess, as users and the interop tests do.
var neolinkBin string

// TestMain builds the binary under test, then runs the tests.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "neolink-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	neolinkBin = filepath.Join(dir, "neolink")
	args := []string{"build", "-o", neolinkBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building neolink:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if os.Getenv("GORACE") == "" {
		// A race-enabled binary otherwise sleeps 1 s when it exits. A race
		// it finds still makes it exit with status 66, failing the test.
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is the outcome of one neolink run.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// neolink runs the binary with args and stdin (may be nil), killing it
// after timeout, and returns its output and exit status.
func neolink(t *testing.T, timeout time.Duration, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, neolinkBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("neolink %s: did not finish within %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), timeout, res.stdout, res.stderr)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("neolink %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// mustSucceed fails the test unless r exited with status 0.
func mustSucceed(t *testing.T, r result, what string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit status %d\nstdout: %s\nstderr: %s", what, r.code, r.stdout, r.stderr)
	}
}

// wantFailure fails the test unless r exited with code and its stderr
// is one line containing substr.
func wantFailure(t *testing.T, r result, code int, substr string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, substr) {
		t.Fatalf("stderr %q does not contain %q", r.stderr, substr)
	}
	if n := strings.Count(strings.TrimRight(r.stderr, "\n"), "\n"); n != 0 {
		t.Fatalf("stderr has %d lines, want 1: %q", n+1, r.stderr)
	}
}

// serveProc is a running "neolink serve".
type serveProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{} // closed when the process has exited
	err    error         // from Wait, valid after done
}

// startServe starts "neolink serve -listen 127.0.0.1:0 args..." and waits
// for its "listening on" line. The process is killed at the end of the test.
func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	return startServeCmd(t, exec.Command(neolinkBin, append([]string{"serve", "-listen", "127.0.0.1:0"}, args...)...))
}

// startServeCmd starts cmd, which runs "neolink serve", as startServe does.
func startServeCmd(t *testing.T, cmd *exec.Cmd) *serveProc {
	t.Helper()
	s := &serveProc{t: t, done: make(chan struct{}), cmd: cmd}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.stderr.Write(p)
	})
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(line, "listening on ")
		if !ok {
			t.Fatalf("serve: first line %q, want \"listening on ADDR\"; stderr: %s", line, s.Stderr())
		}
		s.addr = addr
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not print its address; stderr: %s", s.Stderr())
	}
	return s
}

// Stderr returns what the server logged so far.
func (s *serveProc) Stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// stop sends SIGTERM and returns the exit status, failing the test if the
// server does not exit within timeout.
func (s *serveProc) stop(timeout time.Duration) (int, time.Duration) {
	s.t.Helper()
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(timeout):
		s.t.Fatalf("serve did not exit within %v of SIGTERM; stderr: %s", timeout, s.Stderr())
	}
	var ee *exec.ExitError
	if errors.As(s.err, &ee) {
		return ee.ExitCode(), time.Since(start)
	}
	if s.err != nil {
		s.t.Fatal(s.err)
	}
	return 0, time.Since(start)
}

// writerFunc adapts a function to io.Writer.
type writerFunc func([]byte) (int, error)

// Write calls f.
func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
