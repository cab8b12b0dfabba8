package neonet

import (
	"context"
	"errors"
	"sync"
)

// acceptState is the link's accepting side: the queue of Conns the peer
// opened that nobody has taken yet, and the one acceptor waiting for them.
//
// Lock acceptState.mu BEFORE NodeLink.mu. acceptState.mu serializes Accept
// and Recv1 callers and is held while one waits; everything else here is
// guarded by NodeLink.mu.
type acceptState struct {
	mu     sync.Mutex
	w      waiter      // the acceptor; kind waitAccept
	q      fifo[*Conn] // peer-opened Conns waiting for Accept or Recv1
	closed bool        // CloseAccept was called
}

// Accept waits for the next connection the peer opens. Its first packet is
// already queued in it.
//
// Errors: ErrLinkNoListen after CloseAccept, ErrLinkClosed, or the link's
// failure (errors.Is(err, ErrLinkDown)).
func (l *NodeLink) Accept() (*Conn, error) { return l.AcceptContext(context.Background()) }

// AcceptContext is Accept that also returns ctx.Err() when ctx ends first.
func (l *NodeLink) AcceptContext(ctx context.Context) (*Conn, error) {
	l.acc.mu.Lock()
	defer l.acc.mu.Unlock()
	stop := l.watch(ctx, &l.acc.w)
	c, _, err := l.accept(false)
	stop()
	if err != nil {
		return nil, l.acceptErr("accept", ctx, err)
	}
	return c, nil
}

// accept returns the next peer-opened Conn. For Recv1 (light) it also
// returns the first packet, direct from the read buffer when this goroutine
// read it; otherwise that packet is the first in the Conn's queue.
func (l *NodeLink) accept(light bool) (*Conn, delivery, error) {
	w := &l.acc.w
	l.mu.Lock()
	w.light = light
	w.active = true
	for {
		if c, ok := l.acc.q.pop(); ok {
			c.inAcceptQ = false
			w.active = false
			l.mu.Unlock()
			return c, delivery{}, nil
		}
		read, err := l.stepLocked(w, l.acceptErrLocked())
		if err != nil {
			return nil, delivery{}, err
		}
		if !read {
			continue
		}
		p, c, err := l.readFor(w)
		switch err {
		case nil:
			if light {
				return c, delivery{code: p.Code, args: p.Args, lent: p.Lent, direct: true}, nil
			}
			l.releaseBaton()
			return c, delivery{}, nil
		case errYield:
			// The baton went to a Conn receiver we woke: wait for a new
			// Conn (or for the link to need a reader again) without
			// taking the baton back.
			l.mu.Lock()
			w.active = true // releasing the baton cleared it; still accepting
			if l.acc.q.len() == 0 && l.acceptErrLocked() == nil && !w.cancel {
				w.parkLocked(l)
			}
		default:
			l.mu.Lock()
		}
	}
}

// CloseAccept stops accepting incoming connections: blocked and later Accept
// and Recv1 calls return ErrLinkNoListen, and the peer gets "connection
// refused" for every new connection, including those already queued.
// It is idempotent.
func (l *NodeLink) CloseAccept() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeAcceptLocked()
}

func (l *NodeLink) closeAcceptLocked() {
	if l.acc.closed {
		return
	}
	l.acc.closed = true
	for c, ok := l.acc.q.pop(); ok; c, ok = l.acc.q.pop() {
		c.inAcceptQ = false
		l.stats.RepliedRefused++
		l.abortLocked(c, ErrLinkNoListen, "connection refused")
		l.removeLocked(c) // never accepted: nobody will close it
	}
	l.acc.w.unparkLocked(l)
	if l.rx.reader == &l.acc.w {
		l.interruptLocked()
	}
}

// acceptErrLocked is the error for Accept/Recv1 on a link that cannot accept.
func (l *NodeLink) acceptErrLocked() error {
	if err := l.linkErrLocked(); err != nil {
		return err
	}
	if l.acc.closed {
		return ErrLinkNoListen
	}
	return nil
}

func (l *NodeLink) acceptErr(op string, ctx context.Context, err error) error {
	if errors.Is(err, context.Canceled) && ctx != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return &LinkError{Link: l, Op: op, Err: err}
}
