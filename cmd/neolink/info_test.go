package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// TestTidTime decodes tids whose time NEO/py (ZODB's TimeStamp) prints.
func TestTidTime(t *testing.T) {
	for _, tc := range []struct {
		tid  proto.Tid
		want string
	}{
		// minutes since 1900 for 2026-12-02 15:27, and 26.240969 s of 60
		{0x040d6e5f6ff622ec, "2026-12-02 15:27:26.240969"},
		{0x0000000000000001, "1900-01-01 00:00:00.000000"},
		{0x0000000100000000, "1900-01-01 00:01:00.000000"},
		{0x0000000080000000, "1900-01-01 00:00:30.000000"},
	} {
		got, ok := tidTime(tc.tid)
		if !ok || got.Format("2006-01-02 15:04:05.000000") != tc.want {
			t.Errorf("tidTime(%v) = %v, %v; want %s", tc.tid, got, ok, tc.want)
		}
	}
	if _, ok := tidTime(0); ok {
		t.Error("the zero tid decoded as a time")
	}
	// 1900-02-31 does not exist: day 31 of month 2 (30 days of minutes in).
	if _, ok := tidTime(proto.Tid(uint64((31+30)*24*60) << 32)); ok {
		t.Error("February 31st decoded as a time")
	}
}

// TestInfoLoadUsage: command-line mistakes exit with status 2 and one line.
func TestInfoLoadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"info"}, "-master and -cluster are required"},
		{[]string{"info", "-master", "127.0.0.1:1"}, "-master and -cluster are required"},
		{[]string{"info", "-master", "x:1", "-cluster", "c", "extra"}, `unexpected argument "extra"`},
		{[]string{"info", "-master", "x:1", "-cluster", "c", "-ca", "f"}, "-ca, -cert and -key must be given together"},
		{[]string{"load", "-master", "x:1", "-cluster", "c"}, "want exactly one OID"},
		{[]string{"load", "-master", "x:1", "-cluster", "c", "zz"}, `invalid hex number "zz"`},
		{[]string{"load", "-master", "x:1", "-cluster", "c", "-at", "1", "-before", "2", "1"}, "-at and -before exclude each other"},
		{[]string{"load", "-master", "x:1", "-cluster", "c", "-at", "q", "1"}, `invalid hex number "q"`},
		{[]string{"load", "-master", "x:1", "-cluster", "c", "-timeout", "0s", "1"}, "-timeout must be positive"},
	} {
		r := neolink(t, 10*time.Second, nil, tc.args...)
		wantFailure(t, r, 2, tc.want)
	}
}

// TestInfoLoadFailures: an unreachable master, and a NEO node that is not a
// master with a partition table (neolink serve), give one-line errors and
// exit status 1.
func TestInfoLoadFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	r := neolink(t, 10*time.Second, nil, "info", "-master", dead, "-cluster", "neo")
	wantFailure(t, r, 1, "neoclient: dial master: dial tcp "+dead)

	s := startServe(t, "-cluster", "neo")
	r = neolink(t, 10*time.Second, nil, "load", "-master", s.addr, "-cluster", "neo", "-timeout", "500ms", "1")
	wantFailure(t, r, 1, "waiting for the node list and partition table")
	if !strings.Contains(r.stderr, "deadline exceeded") {
		t.Errorf("stderr %q does not say the -timeout ran out", r.stderr)
	}
	r = neolink(t, 10*time.Second, nil, "info", "-master", s.addr, "-cluster", "other")
	wantFailure(t, r, 1, "PROTOCOL_ERROR: invalid cluster name")
}
