package neonet

import (
	"context"

	"github.com/neolink/neolink/proto"
)

// Lightweight mode: one fresh connection id per request, no open or close
// frames. This is how NEO/py nodes talk (every ask takes a new msg_id), and
// on our side it costs no Conn setup: light Conns are recycled by the link.

// Send1 sends msg as a one-packet notification on a fresh id.
func (l *NodeLink) Send1(msg proto.Msg) error {
	c, err := l.lightConn()
	if err != nil {
		return &LinkError{Link: l, Op: "send1", Err: err}
	}
	err = l.tx.send(nil, nil, c.id, msg)
	l.releaseLight(c)
	if err != nil {
		return &LinkError{Link: l, Op: "send1", Err: err}
	}
	return nil
}

// Ask1 sends req on a fresh id and receives the answer into resp. An Error
// answer is returned as the error (errors.As finds the *proto.Error). It
// does not allocate in steady state.
func (l *NodeLink) Ask1(req, resp proto.Msg) error { return l.ask1(nil, req, resp) }

// Ask1Context is Ask1 that also returns ctx.Err() when ctx ends first.
func (l *NodeLink) Ask1Context(ctx context.Context, req, resp proto.Msg) error {
	return l.ask1(ctx, req, resp)
}

func (l *NodeLink) ask1(ctx context.Context, req, resp proto.Msg) error {
	c, err := l.lightConn()
	if err != nil {
		return &LinkError{Link: l, Op: "ask1", Err: err}
	}
	defer l.releaseLight(c)
	if err := l.tx.send(ctx, nil, c.id, req); err != nil {
		return c.err("ask1", err)
	}
	_, err = c.expect(ctx, []proto.Msg{resp})
	return err
}

func (l *NodeLink) lightConn() (*Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.newLocalLocked()
}

// releaseLight ends a light Conn's use. Late packets on its id get
// "connection closed" (our parity) or are dropped (late answers under
// answer-bit routing).
func (l *NodeLink) releaseLight(c *Conn) {
	l.mu.Lock()
	l.releaseLightLocked(c)
	l.mu.Unlock()
}

func (l *NodeLink) releaseLightLocked(c *Conn) {
	c.closeRecvLocked()
	l.removeLocked(c)
	l.recycleLocked(c)
}

// Request is one request received with Recv1. Reply answers it on its id;
// Close ends it and must be called when done with it (closing it again is
// harmless). A Request is a small value: copies refer to the same request.
type Request struct {
	// Msg is the request. It is owned by the link and valid until Close.
	Msg  proto.Msg
	conn *Conn
	gen  uint32
}

// ID returns the request's connection id.
func (r Request) ID() uint32 { return r.conn.id }

// Recv1 receives the next request the peer sent on a new id. Further
// packets on that id get "connection closed": one request per id. Reply
// then Close it. It does not allocate in steady state.
//
// Errors: ErrLinkNoListen after CloseAccept, ErrLinkClosed, or the link's
// failure (errors.Is(err, ErrLinkDown)); a request that fails to decode is
// answered with a PROTOCOL_ERROR and returned as a *ConnError with Op
// "decode", after which Recv1 may be called again.
func (l *NodeLink) Recv1() (Request, error) { return l.recv1(nil) }

// Recv1Context is Recv1 that also returns ctx.Err() when ctx ends first.
func (l *NodeLink) Recv1Context(ctx context.Context) (Request, error) { return l.recv1(ctx) }

func (l *NodeLink) recv1(ctx context.Context) (Request, error) {
	l.acc.mu.Lock()
	defer l.acc.mu.Unlock()
	stop := l.watch(ctx, &l.acc.w)
	defer stop()
	var c *Conn
	var d delivery
	for {
		var err error
		c, d, err = l.accept(true)
		if err != nil {
			return Request{}, l.acceptErr("recv1", ctx, err)
		}
		if d.direct || l.takeFirst(c, &d) {
			break
		}
	}
	var err error
	m := c.cached(d.code)
	if m == nil {
		err = proto.ErrUnknownCode
	} else {
		err = c.decodeHeld(m, &d) // a lent buffer lives as long as Request.Msg
	}
	l.release(&d)
	proto.Recycle(d.lent)
	if err != nil {
		l.mu.Lock()
		l.stats.DecodeErrors++
		l.replyLocked(c.id, false, "malformed packet")
		l.mu.Unlock()
		l.releaseLight(c)
		return Request{}, &ConnError{Link: l, ConnID: c.id, Op: "decode", Err: err}
	}
	return Request{Msg: m, conn: c, gen: c.gen}, nil
}

// Reply sends msg on the request's id, usually an answer or an Error.
// It fails with ErrClosedConn after Close.
func (r Request) Reply(msg proto.Msg) error { return r.reply(nil, msg) }

// ReplyContext is Reply that also returns ctx.Err() if ctx ends while it
// waits for space in the send buffer.
func (r Request) ReplyContext(ctx context.Context, msg proto.Msg) error { return r.reply(ctx, msg) }

func (r Request) reply(ctx context.Context, msg proto.Msg) error {
	c := r.conn
	if c == nil {
		return ErrClosedConn
	}
	// The id is read under the lock that Close recycles the Conn under:
	// a Reply racing with Close must not answer on the id of the Conn's
	// next use.
	l := c.link
	l.mu.Lock()
	id, ok := c.id, c.gen == r.gen
	l.mu.Unlock()
	if !ok {
		return ErrClosedConn
	}
	if err := l.tx.send(ctx, nil, id, msg); err != nil {
		return &ConnError{Link: l, ConnID: id, Op: "reply", Err: err}
	}
	return nil
}

// takeFirst takes the first packet of a Conn that another reader queued
// for accepting, and closes it for more (one request per id). It reports
// false when the Conn has no packet left because it was aborted meanwhile;
// the Conn is then dropped and the caller accepts the next one.
func (l *NodeLink) takeFirst(c *Conn, d *delivery) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := c.q.pop()
	if b != nil {
		l.dequeuedLocked(b.charge)
	}
	c.closeRecvLocked()
	if b == nil {
		l.removeLocked(c)
		return false
	}
	*d = queued(b)
	return true
}

// Close ends the request. Under parity routing its id is remembered as
// closed, so late packets on it get "connection closed"; under answer-bit
// routing (NEO/py) a later request on the same id is a new request, as
// NEO/py treats it. Closing twice is harmless.
func (r Request) Close() {
	c := r.conn
	if c == nil {
		return
	}
	l := c.link
	l.mu.Lock()
	if c.gen == r.gen {
		l.removeLocked(c)
		l.recycleLocked(c)
	}
	l.mu.Unlock()
}
