package main

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neolink/neolink/handshake"
	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// dial opens a link to addr from the test process.
func dial(t *testing.T, addr string, enc proto.Encoding) *neonet.NodeLink {
	t.Helper()
	cfg := neonet.DefaultConfig()
	cfg.Encoding = enc
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	link, err := neonet.DialLink(ctx, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	return link
}

// TestServeAnswers checks serve's answers from an in-process client.
func TestServeAnswers(t *testing.T) {
	s := startServe(t, "-cluster", "test")
	for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
		link := dial(t, s.addr, enc)
		ask := func(req proto.Msg, resp proto.Msg) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return link.Ask1Context(ctx, req, resp)
		}
		// Node ids: M1 for the server, the next in the peer's namespace for the peer.
		for _, want := range []struct {
			typ proto.NodeType
			id  string
		}{{proto.Client, "C1"}, {proto.Client, "C2"}, {proto.Storage, "S1"}, {proto.Master, "M2"}, {proto.Admin, "A1"}} {
			if enc == proto.EncodingM {
				break
			}
			var ai proto.AcceptIdentification
			if err := ask(&proto.RequestIdentification{NodeType: want.typ, Name: "test"}, &ai); err != nil {
				t.Fatal(err)
			}
			if ai.NodeType != proto.Master || ai.UUID != proto.Some(proto.MakeNodeID(proto.Master, 1)) ||
				!ai.YourUUID.Valid || ai.YourUUID.V.String() != want.id {
				t.Errorf("%v: got %+v, want M1 giving %s", want.typ, ai, want.id)
			}
		}
		var ai proto.AcceptIdentification
		err := ask(&proto.RequestIdentification{NodeType: proto.Client, Name: "other"}, &ai)
		if !errors.Is(err, proto.ProtocolError("")) || !strings.Contains(err.Error(), "invalid cluster name") {
			t.Errorf("wrong cluster: %v", err)
		}
		// A notification gets no answer, and does not disturb the link.
		if err := link.Send1(&proto.NotifyNodeInformation{}); err != nil {
			t.Fatal(err)
		}
		err = ask(&proto.AskLastIDs{}, &proto.AnswerLastIDs{})
		if err == nil || err.Error() != "PROTOCOL_ERROR: unexpected packet AskLastIDs" {
			t.Errorf("AskLastIDs: %v", err)
		}
		var obj proto.AnswerObject
		if err := ask(&proto.AskObject{OID: 1<<32 | 300}, &obj); err != nil {
			t.Fatal(err)
		}
		if obj.OID != 1<<32|300 || obj.Serial != 1 || obj.NextSerial.Valid || obj.Compression != proto.Some(int64(0)) ||
			len(obj.Data) != 300 || obj.Data[299] != byte(299%251) || obj.DataSerial.Valid {
			t.Errorf("AnswerObject: %+v", obj)
		}
		err = ask(&proto.AskObject{OID: 0xffffffff}, &obj)
		if err == nil || !strings.Contains(err.Error(), "cannot answer") {
			t.Errorf("4 GiB object: %v", err)
		}
		// Full mode: many requests on one conn.
		c, err := link.NewConn()
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if err := c.Ask(&proto.Ping{}, &proto.Pong{}); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
}

// TestServeIdleConns checks that conns left idle, as light requests leave
// them, are closed beyond -idle-conns, least recently used first.
func TestServeIdleConns(t *testing.T) {
	s := startServe(t, "-idle-conns", "4")
	link := dial(t, s.addr, proto.EncodingN)
	c, err := link.NewConn()
	if err != nil {
		t.Fatal(err)
	}
	light := func(n int) {
		for range n {
			if err := link.Ask1(&proto.Ping{}, &proto.Pong{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 5 {
		if err := c.Ask(&proto.Ping{}, &proto.Pong{}); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		light(3) // c is among the 4 most recently used idle conns
	}
	light(10)
	err = c.Ask(&proto.Ping{}, &proto.Pong{})
	if err == nil || !strings.Contains(err.Error(), "connection closed") {
		t.Fatalf("conn idle behind 10 newer ones: %v, want connection closed", err)
	}
}

// TestServeSIGTERM checks a graceful shutdown with links open.
func TestServeSIGTERM(t *testing.T) {
	s := startServe(t)
	// An idle link with an open full-mode conn, and a link in the middle
	// of a ping run, must not hold up the shutdown.
	link := dial(t, s.addr, proto.EncodingM)
	c, err := link.NewConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ask(&proto.Ping{}, &proto.Pong{}); err != nil {
		t.Fatal(err)
	}
	linkDown := make(chan error, 1)
	go func() {
		_, err := link.Accept() // someone must read to see the link end
		linkDown <- err
	}()
	pinged := make(chan result, 1)
	go func() {
		pinged <- neolink(t, 60*time.Second, nil, "ping", "-n", "100000000", "-c", "2", "-timeout", "50s", s.addr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(s.Stderr(), " up (encoding") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("links not up; stderr:\n%s", s.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, took := s.stop(20 * time.Second)
	if code != 0 {
		t.Fatalf("serve exited with %d after SIGTERM; stderr:\n%s", code, s.Stderr())
	}
	if took > shutdownTimeout+2*time.Second {
		t.Errorf("shutdown took %v", took)
	}
	select {
	case <-linkDown:
	case <-time.After(5 * time.Second):
		t.Error("the idle link was not closed")
	}
	r := <-pinged
	// Depending on when the signal came, the run or the identification failed.
	if r.code != 1 || !strings.Contains(r.stderr, "round trips failed") && !strings.Contains(r.stderr, "identification failed") {
		t.Errorf("ping during shutdown: status %d, stderr %q", r.code, r.stderr)
	}
	log := s.Stderr()
	if strings.Count(log, "closed for shutdown") != 2 || !strings.Contains(log, "shutting down") {
		t.Errorf("serve log:\n%s", log)
	}
}

// waitLog waits until serve's log contains want.
func waitLog(t *testing.T, s *serveProc, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(s.Stderr(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log %q within %v; stderr:\n%s", want, timeout, s.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeSendTimeout checks that a peer asking for more than it reads
// neither holds serve's handlers forever nor gets more than -link-handlers
// of them: its link is closed after -send-timeout, and serve goes on.
func TestServeSendTimeout(t *testing.T) {
	s := startServe(t, "-link-handlers", "2", "-send-timeout", "500ms")
	// A peer that never reads: a raw connection after the handshake, so
	// that nothing on its side drains the socket. Two 16 MiB answers are
	// more than loopback's socket buffers hold, whatever their autotuning.
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := handshake.Dial(ctx, nc, proto.EncodingN); err != nil {
		t.Fatal(err)
	}
	var reqs []byte
	for i := range 40 {
		reqs, err = proto.AppendPacket(reqs, proto.EncodingN, uint32(2*i+1), &proto.AskObject{OID: 16 << 20}, 0)
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nc.Write(reqs); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "the limit per link (-link-handlers)", 10*time.Second)
	waitLog(t, s, "closed: the peer did not read our answers for 500ms (-send-timeout)", 10*time.Second)
	r := neolink(t, 30*time.Second, nil, "ping", "-n", "10", s.addr)
	mustSucceed(t, r, "ping after a peer that did not read")
	if code, _ := s.stop(10 * time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	// The ping's link may count too if this machine stalled serve for
	// 500 ms; the non-reading link always does.
	if log := s.Stderr(); !strings.Contains(log, "final stats: links 0 up, 2 in all") ||
		!regexp.MustCompile(`links closed for not reading [12];`).MatchString(log) {
		t.Errorf("serve log:\n%s", log)
	}
}

// TestServeProcessLimit checks that a link at the process-wide handler
// limit takes its slot from another link's idle conn.
func TestServeProcessLimit(t *testing.T) {
	s := startServe(t, "-max-handlers", "1")
	a := dial(t, s.addr, proto.EncodingN)
	ca, err := a.NewConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Ask(&proto.Ping{}, &proto.Pong{}); err != nil {
		t.Fatal(err)
	}
	// ca now idles in serve, holding the only slot.
	b := dial(t, s.addr, proto.EncodingN)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Ask1Context(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
		t.Fatalf("second link: %v", err)
	}
	err = ca.AskContext(ctx, &proto.Ping{}, &proto.Pong{})
	if err == nil || !strings.Contains(err.Error(), "connection closed") {
		t.Fatalf("the idle conn of the first link: %v, want connection closed", err)
	}
}

// TestServeLogRateLimit checks that link churn does not flood the log,
// that the lines left out are counted, and that the counters are logged
// periodically and on exit.
func TestServeLogRateLimit(t *testing.T) {
	s := startServe(t, "-stats-every", "300ms", "-handshake-timeout", "300ms")
	// 40 links at once, so that they fall within the log's 1 s window.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 40 {
		wg.Go(func() {
			cfg := neonet.DefaultConfig()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			link, err := neonet.DialLink(ctx, "tcp", s.addr, cfg)
			if err == nil {
				err = link.Ask1Context(ctx, &proto.Ping{}, &proto.Pong{})
				link.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A peer that sends 3 bytes of a handshake and leaves.
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte{0, 0, 0})
	nc.Close()
	waitLog(t, s, "failed after 3 bytes", 10*time.Second)
	// A silent one, which the handshake timeout closes.
	silent, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitLog(t, s, "failed after 0 bytes", 10*time.Second)
	waitLog(t, s, "stats: links 0 up, 40 in all; handshake failures 2", 10*time.Second)
	if code, _ := s.stop(10 * time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	log := s.Stderr()
	up := strings.Count(log, " up (encoding")
	if up > 30 || !strings.Contains(log, `more "link up" lines were not logged)`) {
		t.Errorf("%d link up lines for 40 links:\n%s", up, log)
	}
	if !strings.Contains(log, "final stats: links 0 up, 40 in all; handshake failures 2;") {
		t.Errorf("no final stats:\n%s", log)
	}
}

// TestServeEMFILE checks that running out of file descriptors is logged
// and counted, and that serve keeps going.
func TestServeEMFILE(t *testing.T) {
	s := startServeCmd(t, exec.Command("sh", "-c", `ulimit -n 40 && exec "$0" serve -listen 127.0.0.1:0 -stats-every 0`, neolinkBin))
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 60 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitLog(t, s, "too many open files: out of file descriptors, backing off", 10*time.Second)
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	r := neolink(t, 30*time.Second, nil, "ping", "-n", "10", s.addr)
	mustSucceed(t, r, "ping once descriptors are free again")
	if code, _ := s.stop(10 * time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if !regexp.MustCompile(`accept EMFILE [1-9]`).MatchString(s.Stderr()) {
		t.Errorf("EMFILE not counted:\n%s", s.Stderr())
	}
}

// TestServeHandshakeSlotsFull checks that silent peers filling the
// listener's handshake slots are logged, and that serve recovers once
// their handshakes time out.
func TestServeHandshakeSlotsFull(t *testing.T) {
	s := startServe(t, "-handshake-timeout", "1s", "-stats-every", "0")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range listenerHandshakeSlots + 4 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitLog(t, s, "handshakes in flight, the listener's limit: the oldest are dropped", 10*time.Second)
	// Silent peers cannot lock a real client out: it links up at once.
	r := neolink(t, 30*time.Second, nil, "ping", "-n", "10", "-timeout", "5s", s.addr)
	mustSucceed(t, r, "ping while silent peers hold the handshake slots")
	waitLog(t, s, "failed after 0 bytes", 10*time.Second)
}
