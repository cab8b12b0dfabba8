//go:build linux

package neo_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neolink/neolink/neoclient"
	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// invalName is the object the invalidation test commits over: the other
// tests do not compare its latest revision.
const invalName = "inval"

// dial connects a neoclient to the plain cluster.
func dial(t *testing.T, opt *neoclient.Options) *neoclient.Client {
	t.Helper()
	c, err := neoclient.Dial(ctxT(t, 20*time.Second), env.master, env.cluster, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// nodeType returns the type of a NEO node id from its namespace byte.
func nodeType(id proto.NodeID) string {
	return map[int32]string{-0x10: "master", 0: "storage", -0x20: "client", -0x30: "admin"}[int32(id)>>24]
}

// TestMasterIdentification: the master accepts us as a CLIENT and sends the
// node list (master, storage, us) and a 4-partition table on its own ids.
func TestMasterIdentification(t *testing.T) {
	c := dial(t, nil)
	if nodeType(c.NodeID()) != "client" || nodeType(c.MasterID()) != "master" {
		t.Fatalf("node ids: we are %v, master %v; want a client id and a master id", c.NodeID(), c.MasterID())
	}
	var master, storage, self *proto.NodeInfo
	nodes := c.Nodes()
	for i, n := range nodes {
		switch {
		case n.UUID.V == c.NodeID():
			self = &nodes[i]
		case n.Type == proto.Master:
			master = &nodes[i]
		case n.Type == proto.Storage:
			storage = &nodes[i]
		}
	}
	if master == nil || storage == nil || self == nil {
		t.Fatalf("node list %+v: want the master, a storage and ourselves", nodes)
	}
	if master.UUID.V != c.MasterID() || master.State != proto.NodeRunning || !master.Address.Valid ||
		net.JoinHostPort(master.Address.V.Host, strconv.Itoa(int(master.Address.V.Port))) != env.master {
		t.Errorf("master entry %+v, want %v RUNNING at %s", *master, c.MasterID(), env.master)
	}
	if storage.State != proto.NodeRunning || !storage.Address.Valid {
		t.Errorf("storage entry %+v, want RUNNING with an address", *storage)
	}
	if self.Type != proto.Client || !self.IDTimestamp.Valid {
		t.Errorf("our own entry %+v, want a CLIENT with an id_timestamp", *self)
	}
	pt := c.PartitionTable()
	if len(pt.Rows) != 4 || pt.NumReplicas != 0 || !pt.PTID.Valid {
		t.Fatalf("partition table %+v: want 4 rows (-p 4), 0 replicas (-r 0), a ptid", pt)
	}
	for i, row := range pt.Rows {
		if len(row) != 1 || row[0].UUID != storage.UUID.V || row[0].State != proto.CellUpToDate {
			t.Errorf("row %d = %+v, want one UP_TO_DATE cell of %v", i, row, storage.UUID.V)
		}
	}
	got := c.Received()
	t.Logf("the master sent %v", got)
	if got["NotifyNodeInformation"] < 1 || got["SendPartitionTable"] != 1 || got[neoclient.DecodeErrorKey] != 0 {
		t.Errorf("the master sent %v; want NotifyNodeInformation, one SendPartitionTable, nothing undecodable", got)
	}
}

// TestLastTransaction: AskLastTransaction to the master gives at least the
// last tid NEO/py's client saw after the harness's commits.
func TestLastTransaction(t *testing.T) {
	m := loadManifest(t, env.manifest)
	tid, err := dial(t, nil).LastTransaction(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if tid < m.LastTID {
		t.Fatalf("last tid %v, NEO/py's client saw %v", tid, m.LastTID)
	}
}

// TestLoadLatest: AskObject without at/before returns every object's last
// revision, byte for byte what NEO/py's client loads.
func TestLoadLatest(t *testing.T) {
	m := loadManifest(t, env.manifest)
	checkLatest(t, dial(t, nil), m)
}

// checkLatest loads every object of m but the invalidation test's.
func checkLatest(t *testing.T, c *neoclient.Client, m *manifest) {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	for name, o := range m.Objects {
		if name == invalName {
			continue
		}
		last := o.Revisions[len(o.Revisions)-1]
		got, err := c.Load(ctx, o.OID)
		if err != nil {
			t.Errorf("%s (oid %v): %v", name, o.OID, err)
			continue
		}
		if got.OID != o.OID || got.Serial != last.Serial || got.NextSerial.Valid {
			t.Errorf("%s: oid %v serial %v next %+v; want oid %v serial %v, no next serial",
				name, got.OID, got.Serial, got.NextSerial, o.OID, last.Serial)
		}
		if !bytes.Equal(got.Data, last.Data) {
			t.Errorf("%s: %d bytes differ from NEO/py's %d bytes", name, len(got.Data), len(last.Data))
		}
	}
}

// TestLoadAtBefore: AskObject at= each serial and before= the next one
// return that revision with the right next_serial, for every object.
func TestLoadAtBefore(t *testing.T) {
	m := loadManifest(t, env.manifest)
	c := dial(t, nil)
	ctx := ctxT(t, 60*time.Second)
	revs := 0
	for name, o := range m.Objects {
		for i, r := range o.Revisions {
			revs++
			at, err := c.LoadAt(ctx, o.OID, r.Serial)
			if err != nil {
				t.Errorf("%s at %v: %v", name, r.Serial, err)
				continue
			}
			if at.Serial != r.Serial || !bytes.Equal(at.Data, r.Data) {
				t.Errorf("%s at %v: serial %v, %d bytes; NEO/py loads %d bytes", name, r.Serial, at.Serial, len(at.Data), len(r.Data))
			}
			if i+1 < len(o.Revisions) {
				next := o.Revisions[i+1].Serial
				if !at.NextSerial.Valid || at.NextSerial.V != next {
					t.Errorf("%s at %v: next_serial %+v, want %v", name, r.Serial, at.NextSerial, next)
				}
				before, err := c.LoadBefore(ctx, o.OID, next)
				if err != nil {
					t.Errorf("%s before %v: %v", name, next, err)
					continue
				}
				if before.Serial != r.Serial || !bytes.Equal(before.Data, r.Data) {
					t.Errorf("%s before %v: serial %v, want %v with NEO/py's bytes", name, next, before.Serial, r.Serial)
				}
			}
		}
	}
	if len(m.Objects["twice"].Revisions) != 2 {
		t.Errorf("object twice has %d revisions, want 2", len(m.Objects["twice"].Revisions))
	}
	t.Logf("%d objects, %d revisions checked", len(m.Objects), revs)
}

// TestCompression: NEO/py's client stored the compressible object with
// zlib (compression 1) and the random ones as is; we decompress the first
// and check every checksum against the stored bytes.
func TestCompression(t *testing.T) {
	m := loadManifest(t, env.manifest)
	c := dial(t, nil)
	ctx := ctxT(t, 30*time.Second)
	for _, tc := range []struct {
		name       string
		compressed bool
	}{{"compressible", true}, {"incompressible", false}, {"mib4", false}, {"kib", false}} {
		o := m.Objects[tc.name]
		got, err := c.Load(ctx, o.OID)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if (got.Compression == 1) != tc.compressed {
			t.Errorf("%s: compression %d, want compressed=%v", tc.name, got.Compression, tc.compressed)
		}
		if tc.compressed && got.StoredSize >= len(got.Data)/10 {
			t.Errorf("%s: %d stored bytes for %d data bytes: not compressed", tc.name, got.StoredSize, len(got.Data))
		}
		if !tc.compressed && got.StoredSize != len(got.Data) {
			t.Errorf("%s: %d stored bytes for %d data bytes", tc.name, got.StoredSize, len(got.Data))
		}
	}
}

// TestStorageErrors: the storage's OID_NOT_FOUND (the object exists, not at
// that point) and OID_DOES_NOT_EXIST (never existed) come back as
// *proto.Error, and the link stays usable after them.
func TestStorageErrors(t *testing.T) {
	m := loadManifest(t, env.manifest)
	c := dial(t, nil)
	ctx := ctxT(t, 30*time.Second)
	o := m.Objects["twice"]
	first := o.Revisions[0].Serial
	for _, tc := range []struct {
		what string
		load func() (*neoclient.Object, error)
		code proto.ErrorCode
	}{
		{"before its creation", func() (*neoclient.Object, error) { return c.LoadBefore(ctx, o.OID, first) }, proto.CodeOidNotFound},
		{"at a serial that is not one of its revisions", func() (*neoclient.Object, error) { return c.LoadAt(ctx, o.OID, first+1) }, proto.CodeOidNotFound},
		{"an oid never allocated", func() (*neoclient.Object, error) { return c.Load(ctx, 0x7fff0000) }, proto.CodeOidDoesNotExist},
	} {
		_, err := tc.load()
		var pe *proto.Error
		if !errors.As(err, &pe) || pe.Code != tc.code {
			t.Errorf("%s: error %v (%T), want a *proto.Error %v", tc.what, err, err, tc.code)
			continue
		}
		t.Logf("%s: %v", tc.what, pe)
	}
	if _, err := c.Load(ctx, o.OID); err != nil {
		t.Fatalf("load after the errors: %v", err)
	}
}

// TestInvalidation: a commit by NEO/py's ZODB client makes the master send
// InvalidateObjects, which the Go client receives, and the new revision is
// what NEO/py's client loads.
func TestInvalidation(t *testing.T) {
	m := loadManifest(t, env.manifest)
	type inval struct {
		tid  proto.Tid
		oids []proto.Oid
	}
	got := make(chan inval, 16)
	c := dial(t, &neoclient.Options{OnInvalidation: func(tid proto.Tid, oids []proto.Oid) {
		select {
		case got <- inval{tid, oids}:
		default:
		}
	}})
	out, err := helper(t, 60*time.Second, "commit", "--master", env.master, "--key-name", invalName)
	if err != nil {
		t.Fatalf("commit with NEO/py's client: %v", err)
	}
	var res struct{ OID, TID, Data string }
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("commit output %q: %v", out, err)
	}
	oid, tid, data := proto.Oid(hex64(t, res.OID)), proto.Tid(hex64(t, res.TID)), unhex(t, res.Data)
	if oid != m.Objects[invalName].OID {
		t.Fatalf("committed oid %v, manifest has %v", oid, m.Objects[invalName].OID)
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case iv := <-got:
			if iv.tid != tid {
				t.Logf("InvalidateObjects for another transaction %v: %v", iv.tid, iv.oids)
				continue
			}
			if len(iv.oids) != 1 || iv.oids[0] != oid {
				t.Fatalf("InvalidateObjects(%v, %v), want oid list [%v]", iv.tid, iv.oids, oid)
			}
		case <-timeout:
			t.Fatalf("no InvalidateObjects for tid %v within 20s", tid)
		}
		break
	}
	if n := c.Received()[neoclient.DecodeErrorKey]; n != 0 {
		t.Errorf("%d packets from the master failed to decode", n)
	}
	t.Logf("the master sent %v", c.Received())
	ctx := ctxT(t, 10*time.Second)
	if last, err := c.LastTransaction(ctx); err != nil || last < tid {
		t.Errorf("LastTransaction = %v, %v; want at least %v", last, err, tid)
	}
	obj, err := c.Load(ctx, oid)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Serial != tid || !bytes.Equal(obj.Data, data) {
		t.Errorf("after the commit: serial %v, %d bytes; NEO/py loads serial %v, %d bytes", obj.Serial, len(obj.Data), tid, len(data))
	}
}

// TestTLSCluster: the same reads against a cluster whose nodes run NEO/py's
// TLS (mutual, CA-checked), and a plain dial to it fails.
func TestTLSCluster(t *testing.T) {
	m := loadManifest(t, env.tlsManifest)
	c, err := neoclient.Dial(ctxT(t, 20*time.Second), env.tlsMaster, env.cluster, &neoclient.Options{TLS: tlsConfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkLatest(t, c, m)

	_, err = neoclient.Dial(ctxT(t, 10*time.Second), env.tlsMaster, env.cluster, nil)
	if err == nil {
		t.Fatal("plain dial to the TLS master succeeded")
	}
	t.Logf("plain dial to the TLS master: %v", err)
}

// TestWrongCluster: the master refuses another cluster name with a
// PROTOCOL_ERROR that Dial returns as a *proto.Error.
func TestWrongCluster(t *testing.T) {
	_, err := neoclient.Dial(ctxT(t, 10*time.Second), env.master, "not-"+env.cluster, nil)
	var pe *proto.Error
	if !errors.As(err, &pe) || pe.Code != proto.CodeProtocolError || !strings.Contains(pe.Message, "cluster") {
		t.Fatalf("Dial with a wrong cluster name: %v, want a PROTOCOL_ERROR about the cluster name", err)
	}
	t.Logf("wrong cluster name: %v", err)
}

// TestStorageRefusesUnknownClient: a storage accepts only clients the master
// announced, with the id_timestamp it announced; an unknown one gets
// NOT_READY, which is why neoclient identifies with what the master gave it.
func TestStorageRefusesUnknownClient(t *testing.T) {
	c := dial(t, nil)
	var addr string
	for _, n := range c.Nodes() {
		if n.Type == proto.Storage {
			addr = net.JoinHostPort(n.Address.V.Host, strconv.Itoa(int(n.Address.V.Port)))
		}
	}
	cfg := neonet.DefaultConfig()
	cfg.Encoding = proto.EncodingM
	ctx := ctxT(t, 10*time.Second)
	link, err := neonet.DialLink(ctx, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	req := &proto.RequestIdentification{
		NodeType:    proto.Client,
		UUID:        proto.Some(proto.MakeNodeID(proto.Client, 0xfff)),
		Name:        env.cluster,
		IDTimestamp: proto.Some(1.0),
	}
	err = link.Ask1Context(ctx, req, &proto.AcceptIdentification{})
	var pe *proto.Error
	if !errors.As(err, &pe) || pe.Code != proto.CodeNotReady {
		t.Fatalf("identification as an unknown client: %v, want NOT_READY", err)
	}
	t.Logf("unknown client: %v", err)
}
