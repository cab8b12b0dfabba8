package main

import (
	"flag"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHelp checks the command list and the per-command help.
func TestHelp(t *testing.T) {
	r := neolink(t, 10*time.Second, nil, "help")
	mustSucceed(t, r, "help")
	for _, name := range []string{"bench", "serve", "ping", "decode"} {
		if !strings.Contains(r.stdout, "\n  "+name+" ") {
			t.Errorf("help does not list %s:\n%s", name, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "codec-") {
		t.Errorf("help lists hidden commands:\n%s", r.stdout)
	}
	r = neolink(t, 10*time.Second, nil, "help", "-all")
	mustSucceed(t, r, "help -all")
	if !strings.Contains(r.stdout, "codec-random") || !strings.Contains(r.stdout, "codec-echo") {
		t.Errorf("help -all does not list the hidden commands:\n%s", r.stdout)
	}
	for _, args := range [][]string{{"help", "ping"}, {"ping", "-h"}, {"ping", "--help"}} {
		r = neolink(t, 10*time.Second, nil, args...)
		mustSucceed(t, r, strings.Join(args, " "))
		for _, want := range []string{"usage: neolink ping [flags] ADDR", "-size", "-light", "-json", "-timeout"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%s: no %q in:\n%s", strings.Join(args, " "), want, r.stdout)
			}
		}
	}
}

// TestServeHelp checks that serve's help states its limits and hides the
// test hook.
func TestServeHelp(t *testing.T) {
	r := neolink(t, 10*time.Second, nil, "serve", "-h")
	mustSucceed(t, r, "serve -h")
	for _, want := range []string{"Limits", "-backlog N", "-link-handlers N", "-max-handlers N", "-send-timeout", "-stats-every", "4096 handshakes"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "abort-oid") {
		t.Errorf("serve -h shows the test hook:\n%s", r.stdout)
	}
}

// TestVersion checks the version line.
func TestVersion(t *testing.T) {
	r := neolink(t, 10*time.Second, nil, "version")
	mustSucceed(t, r, "version")
	if !strings.HasPrefix(r.stdout, "neolink ") || !strings.Contains(r.stdout, "NEO protocol 5") || !strings.Contains(r.stdout, " go1.") {
		t.Errorf("version: %q", r.stdout)
	}
}

// TestUsageErrors checks that command-line mistakes give one line and status 2.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"ping"}, "want exactly one ADDR"},
		{[]string{"ping", "-bogus", "127.0.0.1:1"}, "flag provided but not defined: -bogus"},
		{[]string{"ping", "-n", "x", "127.0.0.1:1"}, `invalid value "x" for flag -n`},
		{[]string{"ping", "-encoding", "Q", "127.0.0.1:1"}, `invalid -encoding "Q"`},
		{[]string{"ping", "-c", "0", "127.0.0.1:1"}, "-c must be at least 1"},
		{[]string{"ping", "-ca", "x", "127.0.0.1:1"}, "-ca, -cert and -key must be given together"},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
		{[]string{"serve", "-abort-oid", "xyz"}, `invalid hex number "xyz"`},
		{[]string{"decode", "a", "b"}, "want at most one FILE"},
		{[]string{"help", "nope"}, `unknown command "nope" (run 'neolink help' for the commands)`},
		{[]string{"version", "x"}, `unexpected argument "x"`},
		// ping validates everything before connecting to the (closed) port.
		{[]string{"ping", "-size", "64MiB", "127.0.0.1:1"}, "-size 67108864 is too large: an AnswerObject packet holds at most"},
		{[]string{"ping", "-size", "4294967296", "127.0.0.1:1"}, "-size 4294967296 is too large"},
		{[]string{"ping", "-size", "12q", "127.0.0.1:1"}, "want a size in bytes such as 4096, 4k, 1MiB"},
		{[]string{"ping", "-timeout", "5", "127.0.0.1:1"}, "want a duration with a unit, like 5s"},
		{[]string{"ping", "-d", "soon", "127.0.0.1:1"}, "want a duration like 5s"},
		{[]string{"ping", "-rate", "0", "127.0.0.1:1"}, "want a positive rate"},
		{[]string{"ping", "-i", "10us", "127.0.0.1:1"}, "-i must be at least 1ms"},
		{[]string{"serve", "-backlog", "0"}, "-backlog must be at least 1"},
		{[]string{"serve", "-send-timeout", "3"}, "want a duration with a unit"},
	} {
		r := neolink(t, 10*time.Second, nil, tc.args...)
		wantFailure(t, r, 2, tc.want)
	}
}

// TestPingUnreachable checks the error for an address nobody listens on.
func TestPingUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := neolink(t, 20*time.Second, nil, "ping", "-n", "1", addr)
	wantFailure(t, r, 1, "cannot connect to "+addr)
}

// TestParseArgsInterspersed checks flags after positional arguments, and "--".
func TestParseArgsInterspersed(t *testing.T) {
	fs := newFlagSet("x")
	n := fs.Int("n", 0, "")
	v := fs.Bool("v", false, "")
	pos, err := parseArgs(fs, []string{"a", "-n", "3", "b", "-v", "--", "-c"})
	if err != nil {
		t.Fatal(err)
	}
	if *n != 3 || !*v || !slices.Equal(pos, []string{"a", "b", "-c"}) {
		t.Fatalf("n=%d v=%v pos=%q", *n, *v, pos)
	}
	if _, err := parseArgs(newFlagSet("y"), []string{"-h"}); err != flag.ErrHelp {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
}
