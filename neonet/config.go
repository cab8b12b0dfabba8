package neonet

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/neolink/neolink/proto"
)

// Role says which end of the underlying connection a link is: it fixes the
// parity of the connection ids the link allocates.
type Role uint8

const (
	// Dialer is the end that opened the connection; it allocates odd ids.
	Dialer Role = iota
	// Listener is the end that accepted it; it allocates even ids.
	Listener
)

// String returns "dialer" or "listener".
func (r Role) String() string {
	if r == Dialer {
		return "dialer"
	}
	return "listener"
}

// Routing selects how incoming packets are matched to connections.
type Routing uint8

const (
	// RouteAuto uses RouteParity on N links and RouteAnswerBit on M links.
	RouteAuto Routing = iota
	// RouteParity routes on id parity alone, HTTP/2 style: an id of the
	// peer's parity belongs to a stream the peer opened. NEO/go 2020 and
	// neolink peers speak it; unpatched NEO/py does not.
	RouteParity
	// RouteAnswerBit routes as NEO/py does: a packet with the answer bit
	// (0x8000) belongs to a connection we opened, one without it to the
	// peer's id space. This is what lets an unmodified NEO/py node talk to us.
	//
	// Under this routing the link never sends an Error of its own on an id
	// of ours (an overflow abort, unread answers on a closed Conn): NEO/py
	// would take it for the answer to its own request with the same id.
	// Such Errors are counted in Stats.SuppressedErrors instead. Errors that
	// answer a peer's request (a refused new connection) are sent as usual.
	//
	// RouteAuto picks this routing for every M link, even between two
	// neolink ends: the M handshake carries nothing that tells a neolink
	// peer from NEO/py, and parity routing would misroute NEO/py's ids.
	// Two neolink ends that use Conns full-duplex should speak N, or set
	// RouteParity on both sides.
	RouteAnswerBit
)

// String returns "auto", "parity" or "answerbit".
func (r Routing) String() string {
	switch r {
	case RouteAuto:
		return "auto"
	case RouteParity:
		return "parity"
	case RouteAnswerBit:
		return "answerbit"
	}
	return fmt.Sprintf("Routing(%d)", uint8(r))
}

// Config configures a NodeLink. The zero value is not valid; start from
// DefaultConfig. A Config may be shared by many links; it must not be
// modified while a link built from it is open.
type Config struct {
	// Encoding is the wire framing: proto.EncodingN or proto.EncodingM.
	// 0 means N for dialers and auto-detection for listeners.
	Encoding proto.Encoding

	// Routing selects the incoming packet routing rule.
	Routing Routing

	// HandshakeTimeout bounds each handshake (and the TLS handshake under it).
	HandshakeTimeout time.Duration

	// MaxPacketSize bounds every packet sent or received, header included.
	// Sending a larger message fails; receiving one closes the link.
	MaxPacketSize int

	// ConnRecvBuffer bounds the memory held by packets queued for one Conn
	// that its receiver has not taken yet. Each queued packet is charged
	// what it really holds: its buffer plus a fixed per-packet overhead, so
	// that floods of empty or tiny packets are bounded too. A Conn that
	// overflows it is aborted alone: its receivers get ErrConnOverflow and
	// the peer is told (see Routing for when it is not). A packet arriving
	// for an empty queue is always accepted, so a single answer larger than
	// the bound still gets through.
	ConnRecvBuffer int

	// LinkRecvBuffer bounds the memory held by packets queued for all Conns
	// of the link, including Conns waiting in the accept backlog. When a
	// packet would exceed it, the Conns holding the most are aborted (as for
	// ConnRecvBuffer) until it fits, never a Conn that holds less than the
	// offender. Memory held by queued packets is therefore at most about
	// LinkRecvBuffer plus one packet.
	LinkRecvBuffer int

	// AcceptBacklog bounds the peer-opened Conns waiting for Accept or
	// Recv1. A request arriving on a new id beyond it is refused: the peer
	// gets an Error answer "connection refused" on that id. A notification
	// (a packet that expects no answer, such as InvalidateObjects) cannot be
	// refused that way and must not be lost silently, so it takes the link
	// down with ErrAcceptOverflow, which both ends observe (the peer as a
	// closed link; NEO/py resynchronizes on reconnection).
	AcceptBacklog int

	// SendBuffer bounds the bytes queued for writing, whole packets
	// included. A Send that does not fit waits until the writer drains the
	// buffer, its Conn is closed, or its context ends. A packet larger than
	// SendBuffer is accepted when nothing else is queued. Link-generated
	// control packets (Ping, Pong, Error replies) have a small queue of
	// their own and go out ahead of queued data at the next packet boundary.
	SendBuffer int

	// WriteTimeout, if positive, takes the link down with ErrWriteTimeout
	// when a write to the peer makes no progress for that long (the peer's
	// receive window stayed closed); on connections that are not OS sockets
	// (TLS, net.Pipe), after between half of it and all of it. 0 disables
	// it.
	WriteTimeout time.Duration

	// PacketTimeout, if positive, takes the link down with ErrPacketTimeout
	// when a packet whose first bytes have arrived is not complete that long
	// after: a peer trickling a large packet a byte at a time cannot hold a
	// link (and the memory of the partial packet) forever. Set it well above
	// MaxPacketSize divided by the slowest legitimate peer's bandwidth. 0
	// (the default) disables it.
	PacketTimeout time.Duration

	// TLS, if set, runs TLS on the connection before the NEO handshake, as
	// NEO/py does. See TLSConfig for NEO/py-compatible settings.
	TLS *tls.Config

	// KeepAlive, if positive, sends a Ping when nothing has been received
	// for that long, and takes the link down if then neither a byte arrives
	// nor the peer acknowledges any of our data (our writes progress) for
	// KeepAliveTimeout. Ping and Pong travel on the control queue, ahead of
	// bulk data, so an upload in progress does not delay them, and a slow
	// but live peer that keeps accepting our data is not declared dead. On
	// TCP it also sets TCP_USER_TIMEOUT to KeepAlive+KeepAliveTimeout, so
	// that unacknowledged data fails the socket in bounded time.
	KeepAlive        time.Duration
	KeepAliveTimeout time.Duration

	// AnswerPing makes the link answer an incoming Ping on a new id with
	// Pong itself, as NEO/py's default handler does, instead of passing it
	// to Accept or Recv1. Peers' keepalive pings then work even when the
	// application is not accepting.
	AnswerPing bool

	// OnHandshakeError, if set, is called by a LinkListener for each
	// incoming connection whose handshake failed (the connection is
	// closed). It runs on the handshake's goroutine; it must not call the
	// listener's Close.
	OnHandshakeError func(remote net.Addr, err error)

	// OnAcceptError, if set, is called by a LinkListener with each
	// temporary accept error (the process is out of file descriptors...)
	// before it backs off and retries.
	OnAcceptError func(err error)

	// OnUnsolicitedError, if set, is called with an Error packet that no
	// receiver takes: its id matches no connection (NEO/py sends such Errors
	// before aborting), or its connection no longer receives. Such Errors
	// are never answered. Calls for one link are made one at a time, in
	// arrival order, on a goroutine of their own: the callback may block
	// and may call any method of l, Close included.
	OnUnsolicitedError func(l *NodeLink, id uint32, e *proto.Error)
}

// DefaultConfig returns the default configuration: N framing for dialers and
// auto-detection for listeners, 64 MiB packets, 16 MiB per Conn and 64 MiB
// per link of unread data, a backlog of 1024, a 4 MiB send buffer, a 10 s
// handshake timeout and a 30 s write timeout. Keepalive is off.
func DefaultConfig() *Config {
	return &Config{
		HandshakeTimeout: 10 * time.Second,
		MaxPacketSize:    proto.MaxPacketSize,
		ConnRecvBuffer:   16 << 20,
		LinkRecvBuffer:   64 << 20,
		AcceptBacklog:    1024,
		SendBuffer:       4 << 20,
		WriteTimeout:     30 * time.Second,
		KeepAliveTimeout: 30 * time.Second,
	}
}

// Validate reports the first invalid setting, if any.
func (c *Config) Validate() error {
	switch {
	case c.Encoding != 0 && !c.Encoding.Valid():
		return fmt.Errorf("neonet: config: invalid encoding %v", c.Encoding)
	case c.Routing > RouteAnswerBit:
		return fmt.Errorf("neonet: config: invalid routing %v", c.Routing)
	case c.HandshakeTimeout <= 0:
		return errors.New("neonet: config: HandshakeTimeout must be positive")
	case c.MaxPacketSize < 64 || c.MaxPacketSize > proto.MaxPacketSize:
		return fmt.Errorf("neonet: config: MaxPacketSize must be in [64, %d]", proto.MaxPacketSize)
	case c.ConnRecvBuffer <= 0 || c.LinkRecvBuffer < c.ConnRecvBuffer:
		return errors.New("neonet: config: need 0 < ConnRecvBuffer <= LinkRecvBuffer")
	case c.AcceptBacklog <= 0:
		return errors.New("neonet: config: AcceptBacklog must be positive")
	case c.SendBuffer <= 0:
		return errors.New("neonet: config: SendBuffer must be positive")
	case c.WriteTimeout < 0 || c.PacketTimeout < 0:
		return errors.New("neonet: config: WriteTimeout and PacketTimeout must not be negative")
	case c.KeepAlive < 0 || (c.KeepAlive > 0 && c.KeepAliveTimeout <= 0):
		return errors.New("neonet: config: KeepAlive needs a positive KeepAliveTimeout")
	}
	return nil
}

// orDefault returns cfg, or DefaultConfig() when cfg is nil.
func orDefault(cfg *Config) *Config {
	if cfg == nil {
		return DefaultConfig()
	}
	return cfg
}
