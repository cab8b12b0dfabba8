package neonet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/neolink/neolink/proto"
)

// Conn is one logical connection over a NodeLink: a bidirectional stream of
// messages with one id.
//
// Send may be called from many goroutines at once. Receiving calls (Recv,
// Expect, Ask and their Context variants) may also be called concurrently;
// they are served one at a time, in an unspecified order. Close may be
// called at any time from any goroutine.
type Conn struct {
	link  *NodeLink
	id    uint32
	local bool   // we opened it
	gen   uint32 // light Conns: bumped on recycling, see Request

	txClosed atomic.Bool // Close: Send fails with ErrClosedConn

	rxmu sync.Mutex // serializes receivers; guards msgs and held. Lock rxmu BEFORE NodeLink.mu.
	msgs []proto.Msg
	held []byte // the lent buffer the last Recv's message points into

	// Guarded by link.mu.
	w         waiter
	q         rxQueue
	rxClosed  bool  // no more deliveries: Close, CloseRecv, abort, or light
	closed    bool  // Close was called
	rxErr     error // why receiving was aborted (ErrConnOverflow)
	inAcceptQ bool  // waiting in the accept backlog (see keepingUpLocked)
	toldPeer  bool  // the peer got an Error saying this Conn stopped receiving
}

// ID returns the connection id: odd if the dialer opened it, even if the listener did.
func (c *Conn) ID() uint32 { return c.id }

// Link returns the link the connection belongs to.
func (c *Conn) Link() *NodeLink { return c.link }

// String describes the connection as "<local> - <remote> .<id>".
func (c *Conn) String() string { return fmt.Sprintf("%s .%d", c.link, c.id) }

// Send sends msg on the connection. It returns once the packet is queued
// for writing, after at most waiting for space in the link's send buffer
// (Config.SendBuffer); the packet is then written in order, or the link
// fails and every later call reports it. A packet whose write has begun is
// written completely even if its Conn is closed meanwhile, so closing a Conn
// never breaks the stream's framing.
//
// A large message (64 KiB or more encoded) is not copied: its large byte
// fields are written straight from msg's memory, so Send returns only once
// the packet is written, as a net.Conn write does. Until its write begins,
// closing the Conn (or, for SendContext, ctx ending) withdraws it.
//
// A Send waiting for buffer space returns ErrClosedConn when the Conn is
// closed. On OS sockets Send never blocks in the kernel: what the socket
// does not take at once is written by the link's flusher. On other
// connections (TLS, net.Pipe) the Send that happens to write a batch blocks
// until the connection takes it, like a net.Conn write; Config.WriteTimeout
// bounds it, and NodeLink.Close releases it.
//
// Errors: ErrClosedConn after Close, ErrLinkClosed, or the link's failure
// (errors.Is(err, ErrLinkDown); for the Send whose write failed, errors.Is
// also finds the I/O error), and proto.ErrPacketTooBig for a message over
// Config.MaxPacketSize (nothing is sent). Send does not allocate in steady
// state.
func (c *Conn) Send(msg proto.Msg) error { return c.send(nil, msg) }

// SendContext is Send that also returns ctx.Err() if ctx ends while it waits
// for buffer space. A packet that was queued is sent regardless.
func (c *Conn) SendContext(ctx context.Context, msg proto.Msg) error { return c.send(ctx, msg) }

func (c *Conn) send(ctx context.Context, msg proto.Msg) error {
	if c.txClosed.Load() {
		return c.err("send", ErrClosedConn)
	}
	if err := c.link.tx.send(ctx, c, c.id, msg); err != nil {
		return c.err("send", err)
	}
	return nil
}

// Recv receives the next message. The returned value is owned by the Conn
// and valid until the next receiving call on it: it is reused, so that a
// Conn receiving messages of the same types does not allocate. Concurrent
// Recv calls on one Conn may therefore be handed the same value: a Conn
// read by several goroutines should use Expect with each goroutine's own
// values. Use a message's DecodeArgs/AppendArgs or Expect with your own
// values to keep one.
//
// Errors: ErrClosedConn after Close or CloseRecv, ErrConnOverflow if the
// Conn was aborted for not reading, ErrLinkClosed, or the link's failure
// (errors.Is(err, ErrLinkDown)). A message that fails to decode returns a
// *ConnError with Op "decode" wrapping the *proto.DecodeError; the Conn
// stays usable.
func (c *Conn) Recv() (proto.Msg, error) { return c.recv(nil) }

// RecvContext is Recv that also returns ctx.Err() when ctx ends first.
func (c *Conn) RecvContext(ctx context.Context) (proto.Msg, error) { return c.recv(ctx) }

func (c *Conn) recv(ctx context.Context) (proto.Msg, error) {
	c.rxmu.Lock()
	defer c.rxmu.Unlock()
	d, err := c.receive(ctx)
	if err != nil {
		return nil, c.err("recv", err)
	}
	defer c.link.release(&d)
	m := c.cached(d.code)
	if m == nil {
		proto.Recycle(d.lent)
		return nil, c.decodeErr(fmt.Errorf("%w %d (%#04x)", proto.ErrUnknownCode, d.code, d.code))
	}
	if err := c.decodeHeld(m, &d); err != nil {
		return nil, c.decodeErr(err)
	}
	return m, nil
}

// decodeHeld decodes d into m, a value the Conn owns. A large packet's byte
// fields are decoded in place: its lent buffer is kept in c.held as long
// as m is valid (until the next receiving call, or Request.Close).
func (c *Conn) decodeHeld(m proto.Msg, d *delivery) error {
	if d.lent == nil {
		return m.DecodeArgs(d.args)
	}
	err := proto.DecodeArgsAlias(m, d.args)
	if err != nil {
		proto.Recycle(d.lent)
	} else {
		c.held = d.lent
	}
	d.lent = nil
	return err
}

// receive waits for the next packet under ctx. Called with rxmu held. It
// ends the validity of what the previous Recv returned.
func (c *Conn) receive(ctx context.Context) (delivery, error) {
	if c.held != nil {
		proto.Recycle(c.held)
		c.held = nil
	}
	stop := c.link.watch(ctx, &c.w)
	d, err := c.link.recv(c)
	stop()
	if errors.Is(err, context.Canceled) && ctx != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return d, err
}

// cached returns the Conn's reusable message value for code.
func (c *Conn) cached(code uint16) proto.Msg {
	for _, m := range c.msgs {
		if m.MsgCode() == code {
			return m
		}
	}
	m := proto.New(code)
	if m != nil {
		c.msgs = append(c.msgs, m)
	}
	return m
}

// Expect receives the next message into whichever of msgs has its type and
// returns that index. An Error answer that is not among msgs is returned as
// the error (errors.As finds the *proto.Error); any other message is an
// error wrapping ErrUnexpected. Decoding into the caller's values does not
// allocate in steady state.
func (c *Conn) Expect(msgs ...proto.Msg) (int, error) { return c.expect(nil, msgs) }

// ExpectContext is Expect that also returns ctx.Err() when ctx ends first.
func (c *Conn) ExpectContext(ctx context.Context, msgs ...proto.Msg) (int, error) {
	return c.expect(ctx, msgs)
}

func (c *Conn) expect(ctx context.Context, msgs []proto.Msg) (int, error) {
	c.rxmu.Lock()
	defer c.rxmu.Unlock()
	d, err := c.receive(ctx)
	if err != nil {
		return -1, c.err("recv", err)
	}
	defer c.link.release(&d)
	i, err := decodeExpected(d.code, d.args, msgs) // copies: msgs are the caller's
	proto.Recycle(d.lent)
	if err != nil {
		if _, isErr := err.(*proto.Error); !isErr {
			c.link.countDecodeError()
		}
		return -1, c.err("recv", err)
	}
	return i, nil
}

// decodeExpected decodes args into the msgs element of type code.
func decodeExpected(code uint16, args []byte, msgs []proto.Msg) (int, error) {
	for i, m := range msgs {
		if m.MsgCode() == code {
			if err := m.DecodeArgs(args); err != nil {
				return -1, err
			}
			return i, nil
		}
	}
	if code == proto.AnswerBit {
		e := new(proto.Error)
		if err := e.DecodeArgs(args); err != nil {
			return -1, err
		}
		return -1, e
	}
	name := proto.NameOf(code)
	if name == "" {
		name = fmt.Sprintf("code %#04x", code)
	}
	return -1, fmt.Errorf("%w: %s", ErrUnexpected, name)
}

// Ask sends req and receives its answer into resp. An Error answer is
// returned as the error (errors.As finds the *proto.Error); so is an ACK
// for requests answered by Error. It does not allocate in steady state.
func (c *Conn) Ask(req, resp proto.Msg) error { return c.ask(nil, req, resp) }

// AskContext is Ask that also returns ctx.Err() when ctx ends before the
// answer arrives. The request may still have been sent, and its answer may
// still come: so that it cannot be taken for the answer to a later request,
// an AskContext that ends early closes receiving on the Conn (CloseRecv),
// and later receiving calls on it return ErrClosedConn. Use a new Conn (or
// Ask1Context) for the next request.
func (c *Conn) AskContext(ctx context.Context, req, resp proto.Msg) error {
	return c.ask(ctx, req, resp)
}

func (c *Conn) ask(ctx context.Context, req, resp proto.Msg) error {
	if err := c.send(ctx, req); err != nil {
		return err
	}
	_, err := c.expect(ctx, []proto.Msg{resp})
	if err != nil && ctx != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		c.CloseRecv()
	}
	return err
}

// CloseRecv stops receiving: blocked and later receiving calls return
// ErrClosedConn, unread packets are discarded, and the peer gets
// "connection closed" for what it sends on this id from now on. Send still
// works. It is idempotent.
func (c *Conn) CloseRecv() {
	l := c.link
	l.mu.Lock()
	c.closeRecvLocked()
	l.mu.Unlock()
}

func (c *Conn) closeRecvLocked() {
	l := c.link
	if c.rxClosed {
		return
	}
	c.rxClosed = true
	hadUnread := c.q.len() > 0
	l.dequeuedLocked(c.q.drain())
	if hadUnread && l.linkErrLocked() == nil {
		// Tell the peer its packets were not read rather than drop them silently.
		l.stats.RepliedClosed++
		l.replyLocked(c.id, c.local, "connection closed")
		c.toldPeer = true
	}
	c.w.unparkLocked(l)
	if l.rx.reader == &c.w {
		l.interruptLocked()
	}
}

// Close closes the connection: blocked and later calls on it return
// ErrClosedConn, and the peer gets "connection closed" for any packets it
// sent that were not read. Under parity routing, packets the peer sends on
// this id later also get "connection closed"; under answer-bit routing
// (NEO/py) late answers are dropped and a new request on the id opens a new
// connection, as NEO/py expects. Packets already queued for writing are
// still written. It is idempotent and always returns nil.
func (c *Conn) Close() error {
	l := c.link
	l.mu.Lock()
	if !c.closed {
		c.closed = true
		c.txClosed.Store(true)
		c.closeRecvLocked()
		l.removeLocked(c)
	}
	l.mu.Unlock()
	l.tx.wake()
	return nil
}

// recvErrLocked is the error a receiver gets, or nil if it may receive.
func (c *Conn) recvErrLocked() error {
	l := c.link
	switch {
	case c.rxErr != nil:
		return c.rxErr
	case c.rxClosed:
		return ErrClosedConn
	}
	return l.linkErrLocked()
}

func (c *Conn) err(op string, err error) error {
	if e, ok := err.(*proto.Error); ok {
		return e
	}
	return &ConnError{Link: c.link, ConnID: c.id, Op: op, Err: err}
}

func (c *Conn) decodeErr(err error) error {
	c.link.countDecodeError()
	return &ConnError{Link: c.link, ConnID: c.id, Op: "decode", Err: err}
}

func (l *NodeLink) countDecodeError() {
	l.mu.Lock()
	l.stats.DecodeErrors++
	l.mu.Unlock()
}
