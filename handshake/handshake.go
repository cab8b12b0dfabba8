package handshake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/neolink/neolink/proto"
)

// Dial is the dialer's half of the handshake: it opens a link on conn, a
// connection this side initiated, in encoding enc (proto.EncodingN or
// proto.EncodingM). A listener whose encoding is fixed calls Accept with that
// encoding, which does the same. Dial sends our handshake and reads the
// peer's at the same time, as NEO/py does, so it costs no round trip and
// never deadlocks against a peer that also sends first.
//
// On success the peer's handshake, and nothing after it, has been read from
// conn, so its first packets are still there for the link's reader, and conn
// has no deadline if ctx had one.
//
// On failure it returns an *Error and conn is closed. A NEO peer that
// disagrees (*VersionError, *EncodingError, ErrPeerV6) is given our whole
// handshake before the close, so that it reports the mismatch too; that wait
// is bounded by ctx. A peer that is gone or does not speak NEO is not waited
// for. A peer that closes the connection without sending a byte is most
// likely one that expects the other encoding (NEO/py master closes on an N
// handshake) or TLS; the error says so, and still wraps io.EOF (or the
// reset) for errors.Is.
//
// ctx bounds the whole call: its deadline becomes conn's deadline, and when it
// is cancelled conn is closed, which interrupts any blocked I/O; the error then
// wraps ctx.Err() and says how many bytes of the peer's handshake had
// arrived (none: a silent peer; all: one that did not read ours). No
// goroutine started by Dial outlives it.
//
// Dial must be the first user of conn, and nothing else may read or write
// conn until it returns.
func Dial(ctx context.Context, conn net.Conn, enc proto.Encoding) error {
	if !enc.Valid() {
		return abort(conn, fmt.Errorf(prefix+"invalid encoding %v (want N or M)", enc))
	}
	_, err := Accept(ctx, conn, enc)
	return err
}

// Accept is the listener's half of the handshake: it opens a link on conn, a
// connection this side accepted, and returns the encoding in use.
//
// With enc == 0 it detects the encoding: it reads the peer's handshake, and
// answers with ours of the same encoding. It does not send first, so the
// peer must (every NEO dialer does; two detecting ends would wait for each
// other until ctx ends). When the peer is a NEO node of another version, or
// a NEO/go 2020 node, Accept still answers (in the peer's encoding, or N for
// NEO/go 2020) before closing, so that the peer reports a clean version
// mismatch instead of an unexplained close.
//
// With enc == proto.EncodingN or proto.EncodingM it behaves exactly like
// Dial and returns enc.
//
// Any other enc is an error. What Dial says about success, failure, ctx,
// goroutines and concurrent use of conn applies to Accept too.
func Accept(ctx context.Context, conn net.Conn, enc proto.Encoding) (proto.Encoding, error) {
	if enc != 0 && !enc.Valid() {
		return 0, abort(conn, fmt.Errorf(prefix+"invalid encoding %v (want N, M or 0 to detect)", enc))
	}
	if ctx.Err() != nil {
		// Do not start I/O that the guard would have to undo at once.
		return 0, abort(conn, contextError(ctx))
	}
	g := watch(ctx, conn)
	var err error
	got := 0 // bytes of the peer's handshake received
	if enc == 0 {
		enc, err = detect(conn, &got)
	} else {
		err = exchange(conn, enc, &got)
	}
	if err = g.release(err); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			// How far the peer got tells a silent peer from a slow one,
			// and from one that sent its handshake but did not read ours.
			err = fmt.Errorf("%w after %d of the peer's %d handshake bytes", err, got, Size)
		}
		return 0, abort(conn, err)
	}
	return enc, nil
}

// abort closes conn and returns err as the *Error that names its ends.
func abort(conn net.Conn, err error) *Error {
	e := &Error{LocalAddr: conn.LocalAddr(), RemoteAddr: conn.RemoteAddr(), Err: err}
	conn.Close()
	return e
}

// exchange writes our handshake in a goroutine while it reads the peer's:
// on a net.Pipe a Write blocks until the other end reads, and both ends
// write first.
func exchange(conn net.Conn, enc proto.Encoding, got *int) error {
	sent := make(chan error, 1)
	go func() {
		_, err := conn.Write(handshake(enc))
		sent <- err
	}()
	peer, err := receive(conn, got)
	if err == nil && peer != enc {
		err = &EncodingError{Peer: peer, Local: enc}
	}
	var ce *closedEarly
	if errors.As(err, &ce) {
		err = &closedEarly{hint: dialHint(enc), cause: ce.cause}
	}
	if err != nil && !fromNEOPeer(err) {
		// Nobody will read our handshake: unblock the writer now.
		conn.Close()
	}
	werr := <-sent
	if err != nil {
		return err
	}
	return werr
}

// detect reads the peer's handshake and answers in its encoding.
func detect(conn net.Conn, got *int) (proto.Encoding, error) {
	enc, err := receive(conn, got)
	if err != nil {
		if reply := replyTo(err); reply != 0 {
			// Best effort: the peer learns why we close. Our error is
			// err whatever happens to this write.
			conn.Write(handshake(reply))
		}
		return 0, err
	}
	if _, err := conn.Write(handshake(enc)); err != nil {
		return 0, err
	}
	return enc, nil
}

// replyTo picks the handshake that lets a disagreeing NEO peer see a version
// mismatch of its own, or 0 when there is no one to tell.
func replyTo(err error) proto.Encoding {
	var ve *VersionError
	switch {
	case errors.As(err, &ve):
		return ve.Encoding
	case fromNEOPeer(err):
		// NEO/go 2020 reads 4 bytes; "NEON" is a version mismatch to it.
		return proto.EncodingN
	}
	return 0
}

// receive reads the peer's handshake, deciding after every Read with
// Classify, and never asks for more than Classify allows so that no byte
// past the handshake is consumed. It counts the bytes received in *got.
func receive(r io.Reader, got *int) (proto.Encoding, error) {
	var buf [Size]byte
	n := 0
	for {
		enc, more, err := Classify(buf[:n])
		if more == 0 {
			return enc, err
		}
		m, rerr := r.Read(buf[n : n+more])
		n += m
		*got = n
		if rerr == nil {
			continue
		}
		// Bytes that arrived with the error may decide on their own: a
		// v6 peer that sends 00000006 and hangs up is still a v6 peer.
		if enc, more, err := Classify(buf[:n]); more == 0 {
			return enc, err
		}
		if errors.Is(rerr, io.EOF) || isReset(rerr) {
			return 0, closedError(buf[:n], rerr)
		}
		return 0, rerr
	}
}
