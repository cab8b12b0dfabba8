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
		{[]string{"help", "nope"}, `unknown command "nope"`},
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
