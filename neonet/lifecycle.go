package neonet

import (
	"context"
	"crypto/tls"
	"fmt"
	"syscall"
	"time"

	"github.com/neolink/neolink/proto"
)

// Shutdown closes the link gracefully, as net/http closes a connection:
//
//  1. It stops accepting (new connections from the peer are refused) and
//     waits until every open Conn and light request has been closed. NEO
//     has no close frames, so a Conn the peer opened stays open until this
//     side closes it: a server closes the Conns it has finished with.
//  2. It waits until everything queued for sending is written.
//  3. It shuts down the write side (the peer reads EOF after our last
//     packet), then reads and discards whatever the peer still sends until
//     the peer closes its side or ctx ends. Closing a socket with unread
//     data would make the kernel reset the connection, and the peer could
//     lose the tail of what we sent.
//  4. It closes the link.
//
// Shutdown returns nil when everything queued was written; the error of
// the final flush if writing failed (the link's failure, or ctx.Err() if
// ctx ended before the queue drained). If ctx ends during step 1 or 2, the
// link is closed at once: calls still blocked on it get ErrLinkClosed.
// Give ctx a deadline: a peer that neither reads nor closes would otherwise
// hold step 2 or 3 forever.
func (l *NodeLink) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.closeAcceptLocked()
	if l.idle == nil {
		l.idle = make(chan struct{})
		l.checkIdleLocked()
	}
	idle := l.idle
	l.mu.Unlock()

	select {
	case <-idle:
	case <-l.done:
	case <-ctx.Done():
	}
	if err := l.tx.drain(ctx); err != nil {
		l.Close()
		return &LinkError{Link: l, Op: "shutdown", Err: err}
	}

	l.mu.Lock()
	l.rx.draining = true
	l.stopKeepaliveLocked()
	l.mu.Unlock()
	// Nothing may be written after the write side is shut down.
	l.tx.shutdown(ErrLinkClosed)
	if closeWrite(l.nc) {
		select {
		case <-l.done:
		case <-ctx.Done():
		}
	}
	l.Close()
	l.mu.Lock()
	err := l.downErr
	l.mu.Unlock()
	if err != nil {
		return &LinkError{Link: l, Op: "shutdown", Err: err}
	}
	return nil
}

// closeWrite shuts down the write side of nc if it can (TCP, UNIX, TLS).
func closeWrite(nc interface{}) bool {
	cw, ok := nc.(interface{ CloseWrite() error })
	return ok && cw.CloseWrite() == nil
}

// checkIdleLocked signals Shutdown once no Conn is open.
func (l *NodeLink) checkIdleLocked() {
	if l.idle != nil && !l.idleDone && len(l.local)+len(l.peer) == 0 {
		l.idleDone = true
		close(l.idle)
	}
}

// keepaliveState is the keepalive's state, guarded by NodeLink.mu. The
// keepalive runs on a timer, not a goroutine of its own: an idle link costs
// no goroutine for it.
type keepaliveState struct {
	timer  *time.Timer
	raw    syscall.RawConn // the TCP socket, to read its send queue; nil if none
	conn   *Conn           // the light Conn of the last Ping, until its Pong arrives
	pingAt int64           // unix nanoseconds the outstanding Ping was sent; 0 if none
	acked  uint64          // bytes the peer's kernel had acknowledged when the Ping was sent
	ackAt  int64           // unix nanoseconds more than a Ping's worth was seen acknowledged
}

// pingSlack is more than the control packets (the Ping, a few replies)
// whose acknowledgement alone must not count as proof of life.
const pingSlack = 512

// Keepalive rule: when nothing has been received for Config.KeepAlive, a
// Ping goes out on the control queue (ahead of bulk data, never dropped).
// The peer is alive as long as, since that Ping, a byte arrives, or the
// peer acknowledges more of our data: on TCP, the kernel's count of
// acknowledged bytes (TCP_INFO) grows by more than a Ping's worth;
// elsewhere, data writes progress. The Ping's own acknowledgement proves
// nothing (a frozen process's kernel still acknowledges), so with no data of
// ours in flight only the Pong, or any byte, keeps the link up. If nothing proves the peer
// alive for Config.KeepAliveTimeout the link goes down. Counting our
// acknowledged data keeps a peer whose Pong is queued behind our own upload
// alive, and TCP_USER_TIMEOUT bounds how long the kernel retransmits to a
// vanished peer.

func (l *NodeLink) startKeepalive() {
	if l.cfg.KeepAlive <= 0 {
		return
	}
	nc := l.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	setUserTimeout(nc, l.cfg.KeepAlive+l.cfg.KeepAliveTimeout)
	if sc, ok := nc.(syscall.Conn); ok {
		l.ka.raw, _ = sc.SyscallConn()
	}
	// Under mu: the first tick may fire before the assignment completes.
	l.mu.Lock()
	l.ka.timer = time.AfterFunc(l.keepaliveTick(), l.keepalive)
	l.mu.Unlock()
}

func (l *NodeLink) keepaliveTick() time.Duration {
	return max(min(l.cfg.KeepAlive, l.cfg.KeepAliveTimeout)/4, time.Millisecond)
}

func (l *NodeLink) stopKeepaliveLocked() {
	if l.ka.timer != nil {
		l.ka.timer.Stop()
	}
	if l.pw.timer != nil {
		l.pw.timer.Stop()
	}
}

// keepalive runs on each keepalive tick.
func (l *NodeLink) keepalive() {
	l.mu.Lock()
	if l.closed || l.downErr != nil {
		l.mu.Unlock()
		return
	}
	ka := &l.ka
	if c := ka.conn; c != nil && (c.q.len() > 0 || c.rxClosed) {
		ka.conn = nil // the Pong came (or the Conn was aborted): done with it
		l.releaseLightLocked(c)
	}
	now := time.Now().UnixNano()
	lastRead := l.rx.lastRead.Load()
	acked, ackOK := bytesAcked(ka.raw)
	if !ackOK {
		ka.ackAt = l.tx.lastWrite.Load()
	} else if ka.pingAt != 0 && acked > ka.acked+pingSlack {
		ka.ackAt = now
	}
	if ka.pingAt != 0 {
		if lastRead > ka.pingAt || ka.ackAt > ka.pingAt {
			ka.pingAt = 0
		} else if time.Duration(now-ka.pingAt) >= l.cfg.KeepAliveTimeout {
			l.mu.Unlock()
			l.fail(&LinkError{Link: l, Op: "keepalive", Err: fmt.Errorf(
				"neonet: peer silent for %v after a ping, and none of our data acknowledged",
				l.cfg.KeepAliveTimeout)})
			return
		}
	}
	if ka.pingAt == 0 && time.Duration(now-lastRead) >= l.cfg.KeepAlive {
		if ka.conn != nil {
			l.releaseLightLocked(ka.conn)
			ka.conn = nil
		}
		if c, err := l.newLocalLocked(); err == nil {
			ka.conn, ka.pingAt, ka.acked = c, now, acked
			l.tx.control(c.id, &proto.Ping{}, true)
		}
	}
	ka.timer.Reset(l.keepaliveTick())
	l.mu.Unlock()
}

// Ping sends a Ping on a fresh id and waits for the peer's Pong: a round
// trip that checks the peer is alive and reading. It goes on the control
// queue, ahead of queued data.
func (l *NodeLink) Ping(ctx context.Context) error {
	c, err := l.lightConn()
	if err != nil {
		return &LinkError{Link: l, Op: "ping", Err: err}
	}
	defer l.releaseLight(c)
	if !l.tx.control(c.id, &proto.Ping{}, true) {
		l.mu.Lock()
		err := l.linkErrLocked()
		l.mu.Unlock()
		if err == nil {
			err = ErrLinkClosed
		}
		return &LinkError{Link: l, Op: "ping", Err: err}
	}
	_, err = c.expect(ctx, []proto.Msg{&proto.Pong{}})
	return err
}

// packetWatch is the PacketTimeout check, guarded by NodeLink.mu. Bytes read
// from the socket but not yet routed as whole packets are a partial packet;
// if that stays so, with no packet completing, for PacketTimeout, the link
// goes down. It runs on a timer: no goroutine while idle.
type packetWatch struct {
	timer  *time.Timer
	since  int64  // unix nanoseconds a partial packet was first seen; 0 if none
	routed uint64 // stats.BytesIn when since was set
}

func (l *NodeLink) startPacketWatch() {
	if l.cfg.PacketTimeout <= 0 {
		return
	}
	l.mu.Lock()
	l.pw.timer = time.AfterFunc(l.cfg.PacketTimeout/4, l.packetCheck)
	l.mu.Unlock()
}

func (l *NodeLink) packetCheck() {
	l.mu.Lock()
	if l.closed || l.downErr != nil {
		l.mu.Unlock()
		return
	}
	pw := &l.pw
	partial := uint64(l.rx.bytesRead.Load()) > l.stats.BytesIn
	now := time.Now().UnixNano()
	switch {
	case !partial:
		pw.since = 0
	case pw.since == 0 || pw.routed != l.stats.BytesIn:
		pw.since, pw.routed = now, l.stats.BytesIn
	case time.Duration(now-pw.since) >= l.cfg.PacketTimeout:
		l.mu.Unlock()
		l.fail(ErrPacketTimeout)
		return
	}
	pw.timer.Reset(l.cfg.PacketTimeout / 4)
	l.mu.Unlock()
}
