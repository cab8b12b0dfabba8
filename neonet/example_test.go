package neonet_test

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// objects is the toy object store the example servers answer from.
var objects = map[proto.Oid]string{1: "hello", 3: "world"}

// answerObject answers one AskObject from objects: AnswerObject, or an Error
// with OID_NOT_FOUND.
func answerObject(req *proto.AskObject) proto.Msg {
	data, ok := objects[req.OID]
	if !ok {
		return proto.OidNotFound(fmt.Sprintf("oid %v", req.OID))
	}
	return &proto.AnswerObject{OID: req.OID, Serial: 0x100, Data: []byte(data)}
}

// pipeLinks returns the two ends of a link over net.Pipe. The dialer uses
// encoding enc; the listener detects it. Over TCP, DialLink and ListenLink
// do the same (and set TCP options).
func pipeLinks(enc proto.Encoding) (dialer, listener *neonet.NodeLink, err error) {
	dc, lc := net.Pipe()
	ctx := context.Background()
	type result struct {
		link *neonet.NodeLink
		err  error
	}
	accepted := make(chan result, 1)
	go func() {
		// cfg nil: DefaultConfig, whose Encoding 0 makes a listener auto-detect.
		l, err := neonet.NewLink(ctx, lc, neonet.Listener, nil)
		accepted <- result{l, err}
	}()
	cfg := neonet.DefaultConfig()
	cfg.Encoding = enc
	dialer, err = neonet.NewLink(ctx, dc, neonet.Dialer, cfg)
	r := <-accepted // a failed dialer closes dc, so the listener returns too
	if err == nil {
		err = r.err
	}
	if err != nil {
		if dialer != nil {
			dialer.Close()
		}
		if r.link != nil {
			r.link.Close()
		}
		return nil, nil, err
	}
	return dialer, r.link, nil
}

// A client opens a connection and asks on it; the server accepts the
// connection and answers each AskObject. An Error answer comes back from
// Ask as a *proto.Error.
func Example() {
	client, server, err := pipeLinks(proto.EncodingN)
	if err != nil {
		panic(err)
	}
	fmt.Println("encoding", client.Encoding(), "routing", client.Routing())

	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := server.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var req proto.AskObject
		for {
			// Expect decodes into our own value; a message of another
			// type is an error.
			if _, err := c.Expect(&req); err != nil {
				return // the client closed the link
			}
			if err := c.Send(answerObject(&req)); err != nil {
				return
			}
		}
	}()

	c, err := client.NewConn()
	if err != nil {
		panic(err)
	}
	fmt.Println("conn id", c.ID())
	var resp proto.AnswerObject
	for _, oid := range []proto.Oid{1, 2, 3} {
		err := c.Ask(&proto.AskObject{OID: oid}, &resp)
		var e *proto.Error
		switch {
		case errors.As(err, &e):
			fmt.Printf("oid %v: error %v\n", oid, e)
		case err != nil:
			panic(err)
		default:
			fmt.Printf("oid %v: serial %v data %q\n", resp.OID, resp.Serial, resp.Data)
		}
	}

	c.Close()
	client.Close() // the server's Expect now fails and its goroutine returns
	<-served
	server.Close()

	// Output:
	// encoding N routing parity
	// conn id 1
	// oid 0000000000000001: serial 0000000000000100 data "hello"
	// oid 0000000000000002: error OID_NOT_FOUND: oid 0000000000000002
	// oid 0000000000000003: serial 0000000000000100 data "world"
}

// Lightweight mode, as NEO/py uses ids: every Ask1 takes a fresh id, and the
// server handles each request with Recv1, Reply and Close. Here the link
// uses NEO/py master's M framing, which selects answer-bit routing.
func ExampleNodeLink_Ask1() {
	client, server, err := pipeLinks(proto.EncodingM)
	if err != nil {
		panic(err)
	}
	fmt.Println("encoding", server.Encoding(), "routing", server.Routing())

	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			req, err := server.Recv1()
			if err != nil {
				return // the client closed the link
			}
			// req.Msg belongs to the link and is valid until req.Close.
			var reply proto.Msg = proto.ProtocolError("unexpected request")
			if ask, ok := req.Msg.(*proto.AskObject); ok {
				reply = answerObject(ask)
			}
			fmt.Printf("server: %s on id %d\n", proto.Name(req.Msg), req.ID())
			req.Reply(reply)
			req.Close()
		}
	}()

	var resp proto.AnswerObject
	for _, oid := range []proto.Oid{3, 4} {
		err := client.Ask1(&proto.AskObject{OID: oid}, &resp)
		if err != nil {
			fmt.Println("client:", err)
			continue
		}
		fmt.Printf("client: oid %v data %q\n", resp.OID, resp.Data)
	}

	client.Close()
	<-served
	server.Close()

	// Output:
	// encoding M routing answerbit
	// server: AskObject on id 1
	// client: oid 0000000000000003 data "world"
	// server: AskObject on id 3
	// client: OID_NOT_FOUND: oid 0000000000000004
}
