package handshake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// guard ties a conn's blocking I/O to a context. net.Conn I/O does not take
// a context, so a deadline is copied onto the conn, and cancellation closes
// the conn, which is the one thing that unblocks every net.Conn (TCP,
// net.Pipe, TLS) at any point of a Read or Write.
type guard struct {
	ctx    context.Context
	conn   net.Conn
	dl     bool          // the conn deadline was set from ctx
	stop   func() bool   // from context.AfterFunc
	closed chan struct{} // closed once the AfterFunc has closed conn
}

func watch(ctx context.Context, conn net.Conn) guard {
	g := guard{ctx: ctx, conn: conn}
	if d, ok := ctx.Deadline(); ok {
		// A conn deadline makes the I/O fail by itself, exactly at the
		// deadline, without racing the context's timer. A conn that
		// rejects deadlines is still covered by the AfterFunc.
		g.dl = conn.SetDeadline(d) == nil
	}
	if ctx.Done() == nil {
		// This context can never end (context.Background): there is
		// nothing to watch, and nothing to allocate for it.
		g.stop = func() bool { return true }
		return g
	}
	closed := make(chan struct{})
	g.closed = closed
	g.stop = context.AfterFunc(ctx, func() {
		conn.Close()
		close(closed)
	})
	return g
}

// release ends the watch and returns what to report for err, the outcome of
// the guarded I/O. Once it returns, the AfterFunc has either not run and never
// will, or has finished, so no goroutine outlives the caller.
func (g guard) release(err error) error {
	if !g.stop() {
		// The context ended while we worked and the conn is closed (or
		// about to be): even an exchange that completed is unusable.
		<-g.closed
		return contextError(g.ctx)
	}
	if err != nil {
		if g.dl && errors.Is(err, os.ErrDeadlineExceeded) {
			// The conn deadline is the ctx deadline: say so, even if
			// the context's own timer has not fired yet.
			if g.ctx.Err() != nil {
				return contextError(g.ctx)
			}
			return context.DeadlineExceeded
		}
		return err
	}
	if g.dl {
		return g.conn.SetDeadline(time.Time{})
	}
	return nil
}

// contextError returns ctx.Err(), extended by the cause when the context was
// cancelled with one (context.WithCancelCause), so both stay reachable by
// errors.Is.
func contextError(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, err) {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}
