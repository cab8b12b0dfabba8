package neonet

import (
	"sync"
	"testing"
	"time"

	"github.com/neolink/neolink/proto"
)

// These tests play an unpatched NEO/py master node on the raw side: its ids
// come from one per-connection counter starting at 0 (+1 for every packet
// it originates), answers reuse the request's id, and it routes on the
// answer bit. docs/reference.md §4.2 shows how parity routing breaks
// against it; answer-bit routing, the default for M links, must not.

// A Go client dials a NEO/py master.
func TestNEOPyMasterAsServer(t *testing.T) {
	leakCheck(t)
	var mu sync.Mutex
	var unsolicited []uint32
	cfg := DefaultConfig()
	cfg.OnUnsolicitedError = func(_ *NodeLink, id uint32, e *proto.Error) {
		mu.Lock()
		unsolicited = append(unsolicited, id)
		mu.Unlock()
	}
	l, master := rawPair(t, transports[1], proto.EncodingM, Dialer, cfg)
	if l.Routing() != RouteAnswerBit {
		t.Fatalf("M link routing = %v", l.Routing())
	}

	c, _ := l.NewConn() // id 1
	if err := c.Send(&proto.RequestIdentification{NodeType: proto.Client, Name: "neo"}); err != nil {
		t.Fatal(err)
	}
	id, m := master.recv()
	if id != 1 || proto.Name(m) != "RequestIdentification" {
		t.Fatalf("master got %s on %d", proto.Name(m), id)
	}
	// The master answers on the request's id, then sends notifications with
	// fresh ids from its own counter: 0 and 1. Id 1 is our live conn's id.
	master.send(1, &proto.AcceptIdentification{NodeType: proto.Master, UUID: proto.Some(proto.MakeNodeID(proto.Master, 1)), YourUUID: proto.Some(proto.MakeNodeID(proto.Client, 1))})
	master.send(0, &proto.NotifyNodeInformation{Timestamp: 1})
	master.send(1, &proto.SendPartitionTable{NumReplicas: 1})
	// An Error with an id that matches nothing (admin does this).
	master.send(77, proto.ProtocolError("unsolicited"))

	var accept proto.AcceptIdentification
	if _, err := c.Expect(&accept); err != nil {
		t.Fatalf("identification: %v", err)
	}
	if accept.YourUUID.V != proto.MakeNodeID(proto.Client, 1) {
		t.Fatalf("your uuid %v", accept.YourUUID)
	}
	for _, want := range []struct {
		id   uint32
		name string
	}{{0, "NotifyNodeInformation"}, {1, "SendPartitionTable"}} {
		req, err := l.Recv1()
		if err != nil {
			t.Fatal(err)
		}
		if req.ID() != want.id || proto.Name(req.Msg) != want.name {
			t.Fatalf("notification: %s on %d, want %s on %d", proto.Name(req.Msg), req.ID(), want.name, want.id)
		}
		req.Close()
	}
	// Our conn 1 is still ours: a request and its answer on it.
	c.Send(&proto.AskLastTransaction{})
	if id, _ := master.recv(); id != 1 {
		t.Fatalf("request went out on %d", id)
	}
	master.send(1, &proto.AnswerLastTransaction{TID: 42})
	var last proto.AnswerLastTransaction
	if _, err := c.Expect(&last); err != nil || last.TID != 42 {
		t.Fatalf("answer on conn 1: %v %v", err, last.TID)
	}
	c.Close()
	// A late answer for a closed conn is dropped, never answered with an Error.
	master.send(1, &proto.AnswerLastTransaction{TID: 43})
	master.send(2, &proto.Ping{})
	req, err := l.Recv1()
	if err != nil || req.ID() != 2 {
		t.Fatalf("ping: %v", err)
	}
	req.Reply(&proto.Pong{})
	req.Close()
	if id, m := master.recv(); id != 2 || proto.Name(m) != "Pong" {
		t.Fatalf("master got %s on %d, want Pong on 2 (and no Error before it)", proto.Name(m), id)
	}
	// Callbacks run on a goroutine of their own: give it time.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(unsolicited)
		mu.Unlock()
		if n > 0 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(unsolicited) != 1 || unsolicited[0] != 77 {
		t.Fatalf("unsolicited errors %v", unsolicited)
	}
	if s := l.Stats(); s.DroppedAnswers != 1 || s.RepliedClosed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// An unpatched NEO/py client connects to us: its first packet has id 0,
// our own (even) parity as listener.
func TestNEOPyClientToListener(t *testing.T) {
	leakCheck(t)
	l, client := rawPair(t, transports[1], proto.EncodingM, Listener, nil)
	go func() {
		for {
			req, err := l.Recv1()
			if err != nil {
				return
			}
			switch m := req.Msg.(type) {
			case *proto.RequestIdentification:
				req.Reply(&proto.AcceptIdentification{NodeType: proto.Master})
			case *proto.AskObject:
				req.Reply(&proto.AnswerObject{OID: m.OID})
			}
			req.Close()
		}
	}()
	client.send(0, &proto.RequestIdentification{NodeType: proto.Client, Name: "neo"})
	if id, m := client.recv(); id != 0 || proto.Name(m) != "AcceptIdentification" {
		t.Fatalf("got %s on %d", proto.Name(m), id)
	}
	// Ids 1, 2, 3 from the client's counter; our own conn uses even id 2 at
	// the same time. Neither side confuses them.
	ours, _ := l.NewConn()
	if ours.ID() != 2 {
		t.Fatalf("listener's first id = %d", ours.ID())
	}
	answered := make(chan error, 1)
	go func() { answered <- ours.Ask(&proto.AskLastTransaction{}, &proto.AnswerLastTransaction{}) }()
	for oid := uint32(1); oid <= 3; oid++ {
		client.send(oid, &proto.AskObject{OID: proto.Oid(oid)})
	}
	got := map[uint32]bool{}
	var sawAsk bool
	for len(got) < 3 || !sawAsk {
		id, m := client.recv()
		switch m := m.(type) {
		case *proto.AnswerObject:
			if uint32(m.OID) != id {
				t.Fatalf("answer for %v on id %d", m.OID, id)
			}
			got[id] = true
		case *proto.AskLastTransaction:
			if id != 2 {
				t.Fatalf("our request on id %d", id)
			}
			sawAsk = true
			client.send(2, &proto.AnswerLastTransaction{TID: 9})
		default:
			t.Fatalf("client got %s", proto.Name(m))
		}
	}
	if err := wait(t, answered); err != nil {
		t.Fatal(err)
	}
	ours.Close()
}

// NEO/py storage replication streams AddObject notifications on the id of
// our AskFetchObjects, without the answer bit, then the answer.
func TestNEOPyReplicationStream(t *testing.T) {
	leakCheck(t)
	l, storage := rawPair(t, transports[1], proto.EncodingM, Dialer, nil)
	c, _ := l.NewConn()
	c.Send(&proto.AskFetchObjects{Partition: 1})
	id, _ := storage.recv()
	for i := range 3 {
		storage.send(id, &proto.AddObject{OID: proto.Oid(i), Data: []byte("x")})
	}
	storage.send(id, &proto.AnswerFetchObjects{})
	var add proto.AddObject
	var ans proto.AnswerFetchObjects
	for i := range 3 {
		n, err := c.ExpectContext(ctxTimeout(t), &add, &ans)
		if err != nil || n != 0 || add.OID != proto.Oid(i) {
			t.Fatalf("stream packet %d: %d %v", i, n, err)
		}
	}
	if n, err := c.Expect(&add, &ans); err != nil || n != 1 {
		t.Fatalf("final answer: %d %v", n, err)
	}
}
