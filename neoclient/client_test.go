package neoclient_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neolink/neolink/neoclient"
	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// The fakes below play a NEO/py master and storage over loopback with the
// M encoding, sending what the real ones send (the interop/neo tests check
// the same client against real NEO/py nodes).

const cluster = "test"

var (
	masterID  = proto.MakeNodeID(proto.Master, 1)
	storageID = proto.MakeNodeID(proto.Storage, 1)
	clientID  = proto.MakeNodeID(proto.Client, 7)
	idStamp   = 1234.5
)

// mConfig is the configuration of the fakes' listeners.
func mConfig() *neonet.Config {
	cfg := neonet.DefaultConfig()
	cfg.Encoding = proto.EncodingM
	return cfg
}

// fakeStorage answers AskObject from objects, after checking that the
// client identifies with the id and id_timestamp the master gave it.
type fakeStorage struct {
	ll      *neonet.LinkListener
	objects map[proto.Oid]*proto.AnswerObject
	mu      sync.Mutex
	idents  []*proto.RequestIdentification
}

func startStorage(t *testing.T, objects map[proto.Oid]*proto.AnswerObject) *fakeStorage {
	ll, err := neonet.ListenLink("tcp", "127.0.0.1:0", mConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeStorage{ll: ll, objects: objects}
	var wg sync.WaitGroup
	t.Cleanup(func() { ll.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			link, err := ll.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(link) })
		}
	})
	return s
}

func (s *fakeStorage) serve(link *neonet.NodeLink) {
	defer link.Close()
	for {
		c, err := link.Accept()
		if err != nil {
			return
		}
		msg, err := c.Recv()
		if err != nil {
			return
		}
		var reply proto.Msg
		switch m := msg.(type) {
		case *proto.RequestIdentification:
			s.mu.Lock()
			cp := *m
			s.idents = append(s.idents, &cp)
			s.mu.Unlock()
			if m.UUID != proto.Some(clientID) || m.IDTimestamp != proto.Some(idStamp) {
				reply = proto.NotReady("unknown node")
			} else {
				reply = &proto.AcceptIdentification{NodeType: proto.Storage, UUID: proto.Some(storageID), YourUUID: m.UUID}
			}
		case *proto.AskObject:
			if ans, ok := s.objects[m.OID]; ok {
				reply = ans
			} else {
				reply = proto.OidDoesNotExist(m.OID.String())
			}
		default:
			reply = proto.ProtocolError("unexpected")
		}
		c.Send(reply)
		c.Close()
	}
}

// fakeMaster accepts one client, sends it the node list and partition
// table, answers AskLastTransaction and AskClusterState, and lets the test
// push more notifications.
type fakeMaster struct {
	ll      *neonet.LinkListener
	links   chan *neonet.NodeLink
	storage string // host:port of the storage it announces
	silent  bool   // send nothing after AcceptIdentification
}

func startMaster(t *testing.T, storageAddr string, silent bool) *fakeMaster {
	ll, err := neonet.ListenLink("tcp", "127.0.0.1:0", mConfig())
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeMaster{ll: ll, links: make(chan *neonet.NodeLink, 4), storage: storageAddr, silent: silent}
	var wg sync.WaitGroup
	t.Cleanup(func() { ll.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			link, err := ll.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { m.serve(t, link) })
		}
	})
	return m
}

// notify sends msg to the client on a fresh id, as NEO/py's master does.
func notify(link *neonet.NodeLink, msg proto.Msg) error {
	c, err := link.NewConn()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Send(msg)
}

func (m *fakeMaster) serve(t *testing.T, link *neonet.NodeLink) {
	defer link.Close()
	for {
		c, err := link.Accept()
		if err != nil {
			return
		}
		msg, err := c.Recv()
		if err != nil {
			return
		}
		switch r := msg.(type) {
		case *proto.RequestIdentification:
			if r.Name != cluster {
				c.Send(proto.ProtocolError("invalid cluster name"))
				c.Close()
				continue
			}
			c.Send(&proto.AcceptIdentification{NodeType: proto.Master, UUID: proto.Some(masterID), YourUUID: proto.Some(clientID)})
			c.Close()
			if m.silent {
				continue
			}
			host, port, _ := net.SplitHostPort(m.storage)
			p, _ := strconv.Atoi(port)
			notify(link, &proto.NotifyNodeInformation{Timestamp: 1, NodeList: []proto.NodeInfo{
				{Type: proto.Client, UUID: proto.Some(clientID), State: proto.NodeRunning, IDTimestamp: proto.Some(idStamp)},
				{Type: proto.Master, UUID: proto.Some(masterID), State: proto.NodeRunning, Address: proto.Some(proto.Address{Host: "127.0.0.1", Port: 1})},
				{Type: proto.Storage, UUID: proto.Some(storageID), State: proto.NodeRunning, Address: proto.Some(proto.Address{Host: host, Port: uint16(p)})},
			}})
			notify(link, &proto.SendPartitionTable{PTID: proto.Some(uint64(1)), RowList: [][]proto.CellInfo{
				{{UUID: storageID, State: proto.CellUpToDate}},
				{{UUID: storageID, State: proto.CellUpToDate}},
			}})
			m.links <- link
		case *proto.AskLastTransaction:
			c.Send(&proto.AnswerLastTransaction{TID: 0x1234})
			c.Close()
		case *proto.AskClusterState:
			c.Send(&proto.AnswerClusterState{State: proto.Some(proto.ClusterRunning)})
			c.Close()
		default:
			c.Close()
		}
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// answer builds an AnswerObject as a NEO/py storage stores data: the
// checksum is the SHA-1 of the stored bytes, compressed or not.
func answer(oid proto.Oid, serial proto.Tid, data []byte, compress bool) *proto.AnswerObject {
	stored, comp := data, int64(0)
	if compress {
		var b bytes.Buffer
		w := zlib.NewWriter(&b)
		w.Write(data)
		w.Close()
		stored, comp = b.Bytes(), 1
	}
	sum := sha1.Sum(stored)
	return &proto.AnswerObject{OID: oid, Serial: serial, Compression: proto.Some(comp), Checksum: sum[:], Data: stored}
}

func TestDialAndLoad(t *testing.T) {
	big := bytes.Repeat([]byte("neo "), 10000)
	bad := answer(4, 0x40, []byte("data"), false)
	bad.Checksum = bytes.Repeat([]byte{1}, 20)
	undone := &proto.AnswerObject{OID: 5, Serial: 0x50, Compression: proto.Some(int64(0)), Checksum: make([]byte, 20)}
	oddComp := answer(6, 0x60, []byte("data"), false)
	oddComp.Compression = proto.Some(int64(7))
	st := startStorage(t, map[proto.Oid]*proto.AnswerObject{
		1: answer(1, 0x10, []byte("plain"), false),
		2: answer(2, 0x20, big, true),
		3: answer(7, 0x30, []byte("x"), false), // answers for another oid
		4: bad, 5: undone, 6: oddComp,
	})
	m := startMaster(t, st.ll.Addr().String(), false)

	var mu sync.Mutex
	var invals []proto.Tid
	c, err := neoclient.Dial(ctxFor(t, 10*time.Second), m.ll.Addr().String(), cluster, &neoclient.Options{
		OnInvalidation: func(tid proto.Tid, oids []proto.Oid) {
			mu.Lock()
			invals = append(invals, tid)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxFor(t, 10*time.Second)
	if c.NodeID() != clientID || c.MasterID() != masterID {
		t.Errorf("ids %v %v", c.NodeID(), c.MasterID())
	}
	if n := c.Nodes(); len(n) != 3 || n[0].Type != proto.Master || n[1].Type != proto.Storage || n[2].Type != proto.Client {
		t.Errorf("nodes %+v, want master, storage, client in that order", n)
	}
	if tid, err := c.LastTransaction(ctx); err != nil || tid != 0x1234 {
		t.Errorf("LastTransaction = %v, %v", tid, err)
	}
	if s, ok, err := c.ClusterState(ctx); err != nil || !ok || s != proto.ClusterRunning {
		t.Errorf("ClusterState = %v %v %v", s, ok, err)
	}

	obj, err := c.Load(ctx, 1)
	if err != nil || string(obj.Data) != "plain" || obj.Serial != 0x10 || obj.Compression != 0 || obj.Storage != storageID {
		t.Fatalf("Load(1) = %+v, %v", obj, err)
	}
	obj, err = c.Load(ctx, 2)
	if err != nil || !bytes.Equal(obj.Data, big) || obj.Compression != 1 || obj.StoredSize >= len(big) {
		t.Fatalf("Load(2) (zlib): %v", err)
	}
	for _, tc := range []struct {
		oid  proto.Oid
		want string
	}{
		{3, "storage answered oid"},
		{4, "wrong checksum"},
		{5, "creation was undone"},
		{6, "unknown compression 7"},
	} {
		if _, err := c.Load(ctx, tc.oid); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v): %v, want an error containing %q", tc.oid, err, tc.want)
		}
	}
	if _, err := c.Load(ctx, 5); !errors.Is(err, neoclient.ErrNoData) {
		t.Errorf("Load of an undone creation: %v, want ErrNoData", err)
	}
	_, err = c.Load(ctx, 99)
	var pe *proto.Error
	if !errors.As(err, &pe) || pe.Code != proto.CodeOidDoesNotExist {
		t.Errorf("Load(99): %v, want OID_DOES_NOT_EXIST", err)
	}
	st.mu.Lock()
	if len(st.idents) != 1 {
		t.Errorf("the client identified %d times to the storage, want once (the link is reused)", len(st.idents))
	}
	st.mu.Unlock()

	// Later notifications: an invalidation, then the storage's cells go
	// OUT_OF_DATE and the storage itself DOWN.
	link := <-m.links
	if err := notify(link, &proto.InvalidateObjects{TID: 0x99, OIDList: []proto.Oid{1}}); err != nil {
		t.Fatal(err)
	}
	notify(link, &proto.NotifyPartitionChanges{PTID: 2, CellList: []proto.CellChange{{Offset: 1, UUID: storageID, State: proto.CellOutOfDate}}})
	waitFor(t, func() bool { return c.PartitionTable().PTID == proto.Some(uint64(2)) })
	mu.Lock()
	if len(invals) != 1 || invals[0] != 0x99 {
		t.Errorf("invalidations %v, want [0x99]", invals)
	}
	mu.Unlock()
	if _, err := c.Load(ctx, 1); err == nil || !strings.Contains(err.Error(), "no running storage has a readable cell") {
		t.Errorf("Load from an OUT_OF_DATE partition: %v", err)
	}
	if _, err := c.Load(ctx, 2); err != nil {
		t.Errorf("Load from the other partition: %v", err)
	}
	notify(link, &proto.NotifyNodeInformation{Timestamp: 2, NodeList: []proto.NodeInfo{
		{Type: proto.Storage, UUID: proto.Some(storageID), State: proto.NodeDown},
	}})
	waitFor(t, func() bool { return c.Nodes()[1].State == proto.NodeDown })
	if _, err := c.Load(ctx, 2); err == nil {
		t.Error("Load with the storage DOWN succeeded")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}

func TestDialErrors(t *testing.T) {
	m := startMaster(t, "127.0.0.1:1", false)
	_, err := neoclient.Dial(ctxFor(t, 10*time.Second), m.ll.Addr().String(), "other", nil)
	var pe *proto.Error
	if !errors.As(err, &pe) || pe.Code != proto.CodeProtocolError {
		t.Errorf("wrong cluster: %v, want the master's PROTOCOL_ERROR", err)
	}

	// A master that never sends the partition table: Dial gives up with ctx.
	silent := startMaster(t, "127.0.0.1:1", true)
	_, err = neoclient.Dial(ctxFor(t, 300*time.Millisecond), silent.ll.Addr().String(), cluster, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "partition table") {
		t.Errorf("silent master: %v", err)
	}

	// Nothing listening.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	if _, err := neoclient.Dial(ctxFor(t, 5*time.Second), addr, cluster, nil); err == nil || !strings.HasPrefix(err.Error(), "neoclient: ") {
		t.Errorf("refused: %v", err)
	}
}

func TestStorageUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	m := startMaster(t, addr, false)
	c, err := neoclient.Dial(ctxFor(t, 10*time.Second), m.ll.Addr().String(), cluster, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 { // the failed dial is forgotten: the second load dials again
		if _, err := c.Load(ctxFor(t, 5*time.Second), 1); err == nil || !strings.Contains(err.Error(), "storage S1 at "+addr) {
			t.Errorf("Load with the storage down: %v", err)
		}
	}
}
