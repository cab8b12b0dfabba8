package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestPingMatrix pings serve in both encodings and modes with 1 MiB objects.
func TestPingMatrix(t *testing.T) {
	s := startServe(t)
	for _, enc := range []string{"N", "M"} {
		for _, mode := range []string{"full", "light"} {
			t.Run(enc+"/"+mode, func(t *testing.T) {
				args := []string{"ping", "-encoding", enc, "-size", "1048576", "-n", "12", "-c", "3", "-json", s.addr}
				if mode == "light" {
					args = append(args, "-light")
				}
				r := neolink(t, 60*time.Second, nil, args...)
				mustSucceed(t, r, "ping")
				var got pingJSON
				dec := json.NewDecoder(strings.NewReader(r.stdout))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("stdout %q: %v", r.stdout, err)
				}
				if dec.More() {
					t.Fatalf("stdout has more than one JSON object: %q", r.stdout)
				}
				if got.Count != 12 || got.Errors != 0 || got.P50 <= 0 || got.P50 > got.P90 ||
					got.P90 > got.P99 || got.P99 > got.Max || got.RPS <= 0 {
					t.Fatalf("implausible result %+v", got)
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
	r := neolink(t, 60*time.Second, nil, "ping", "-encoding", "m", "-n", "300", "-c", "2", s.addr)
	mustSucceed(t, r, "ping")
	for _, want := range []string{"300 of 300 round trips ok", "p50", "p99", "µs |#", "round trips/s, 0 errors"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in:\n%s", want, r.stdout)
		}
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

// TestPingAbortOID checks that a link closed mid-run fails ping quickly.
func TestPingAbortOID(t *testing.T) {
	s := startServe(t, "-abort-oid", "2a")
	for _, enc := range []string{"N", "M"} {
		for _, light := range []bool{false, true} {
			args := []string{"ping", "-encoding", enc, "-size", "42", "-n", "100", "-c", "4", "-timeout", "50s", s.addr}
			if light {
				args = append(args, "-light")
			}
			r := neolink(t, 60*time.Second, nil, args...)
			wantFailure(t, r, 1, "100 of 100 round trips failed: the link went down")
			if r.elapsed > 10*time.Second {
				t.Errorf("ping took %v to notice the link went down", r.elapsed)
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

// TestPingTimeout checks that -timeout bounds the run.
func TestPingTimeout(t *testing.T) {
	s := startServe(t)
	r := neolink(t, 30*time.Second, nil, "ping", "-n", "100000000", "-light", "-timeout", "300ms", s.addr)
	wantFailure(t, r, 1, "timed out after 300ms")
	if r.elapsed > 10*time.Second {
		t.Errorf("ping took %v despite -timeout 300ms", r.elapsed)
	}
}
