//go:build linux

package neo_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// neolinkRun runs bin/neolink with args and returns stdout, stderr and the
// exit status.
func neolinkRun(t *testing.T, args ...string) (stdout []byte, stderr string, code int) {
	t.Helper()
	cmd := command(t, env.neolink, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { killGroup(cmd) })
	defer timer.Stop()
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.Bytes(), errb.String(), code
}

// TestCLIInfo: `neolink info` (text and -json) against the live cluster, in
// plain TCP and TLS.
func TestCLIInfo(t *testing.T) {
	m := loadManifest(t, env.manifest)
	out, stderr, code := neolinkRun(t, "info", "-master", env.master, "-cluster", env.cluster)
	if code != 0 {
		t.Fatalf("neolink info: status %d: %s", code, stderr)
	}
	t.Logf("neolink info:\n%s", out)
	text := strings.Join(strings.Fields(string(out)), " ") // columns are padded
	for _, want := range []string{"cluster neolink-interop", "state RUNNING", "M1 MASTER RUNNING " + env.master,
		"S1 STORAGE RUNNING", "C1 CLIENT RUNNING -", "4 partitions, 0 replicas, 4/4 partitions readable", "S1 4 UP_TO_DATE"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	for _, tc := range []struct {
		name, master string
		tls          []string
	}{{"plain", env.master, nil}, {"tls", env.tlsMaster, tlsArgs("-")}} {
		args := append([]string{"info", "-json", "-master", tc.master, "-cluster", env.cluster}, tc.tls...)
		out, stderr, code := neolinkRun(t, args...)
		if code != 0 {
			t.Fatalf("%s: neolink info -json: status %d: %s", tc.name, code, stderr)
		}
		var info struct {
			Cluster, State string
			LastTID        string `json:"last_tid"`
			Nodes          []struct{ ID, Type, State, Address string }
			PT             struct {
				Partitions int `json:"partitions"`
				Readable   int `json:"readable_partitions"`
			} `json:"partition_table"`
		}
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatalf("%s: -json output %q: %v", tc.name, out, err)
		}
		if info.PT.Partitions != 4 || info.PT.Readable != 4 || len(info.Nodes) < 3 {
			t.Errorf("%s: -json %+v: want 4 readable partitions and at least 3 nodes", tc.name, info)
		}
		if tc.name == "plain" && hex64(t, info.LastTID) < uint64(m.LastTID) {
			t.Errorf("last_tid %s, NEO/py saw %v", info.LastTID, m.LastTID)
		}
	}
}

// TestCLILoad: `neolink load` writes exactly NEO/py's bytes for the latest
// revision, -at and -before, and fails in one line for a missing object.
func TestCLILoad(t *testing.T) {
	m := loadManifest(t, env.manifest)
	base := []string{"load", "-master", env.master, "-cluster", env.cluster}
	for _, name := range []string{"compressible", "mib4", "small"} {
		o := m.Objects[name]
		out, stderr, code := neolinkRun(t, append(base, o.OID.String())...)
		if code != 0 || !bytes.Equal(out, o.Revisions[len(o.Revisions)-1].Data) {
			t.Errorf("load %s: status %d, %d bytes, want NEO/py's %d bytes; stderr %q", name, code, len(out), len(o.Revisions[len(o.Revisions)-1].Data), stderr)
		}
	}
	twice := m.Objects["twice"]
	first, second := twice.Revisions[0], twice.Revisions[1]
	for _, args := range [][]string{
		{"-at", first.Serial.String(), twice.OID.String()},
		{"-before", "0x" + second.Serial.String(), "0x" + twice.OID.String()},
	} {
		out, stderr, code := neolinkRun(t, append(base, args...)...)
		if code != 0 || !bytes.Equal(out, first.Data) {
			t.Errorf("load %v: status %d, %d bytes, want the first revision's %d bytes; stderr %q", args, code, len(out), len(first.Data), stderr)
		}
	}
	out, stderr, code := neolinkRun(t, append(base, "7fff0000")...)
	if code != 1 || len(out) != 0 || !strings.Contains(stderr, "OID_DOES_NOT_EXIST") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("load of a missing oid: status %d, stdout %q, stderr %q; want status 1 and one OID_DOES_NOT_EXIST line", code, out, stderr)
	}
	t.Logf("missing oid: %s", strings.TrimSpace(stderr))

	tm := loadManifest(t, env.tlsManifest)
	o := tm.Objects["incompressible"]
	args := append([]string{"load", "-master", env.tlsMaster, "-cluster", env.cluster}, tlsArgs("-")...)
	out, stderr, code = neolinkRun(t, append(args, o.OID.String())...)
	if code != 0 || !bytes.Equal(out, o.Revisions[0].Data) {
		t.Errorf("load over TLS: status %d, %d bytes; stderr %q", code, len(out), stderr)
	}
}
