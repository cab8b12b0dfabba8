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

	// ConnRecvBuffer bounds the bytes queued for one Conn that its reader
	// has not taken yet. A Conn that overflows it is aborted alone: its
	// receivers get ErrConnOverflow and the peer gets a PROTOCOL_ERROR on
	// that id. A packet arriving for an empty queue is always accepted.
	ConnRecvBuffer int

	// LinkRecvBuffer bounds the bytes queued for all Conns of the link. The
	// Conn whose packet would exceed it is aborted as for ConnRecvBuffer.
	// A packet for an empty queue is accepted regardless, so the worst case
	// is LinkRecvBuffer plus one packet per Conn (bounded by MaxPacketSize
	// and, for new Conns, by AcceptBacklog).
	LinkRecvBuffer int

	// AcceptBacklog bounds the peer-opened Conns waiting for Accept or
	// Recv1. Beyond it the peer gets "connection refused" at once.
	AcceptBacklog int

	// SendBuffer bounds the bytes queued for writing. A Send that finds the
	// buffer full waits until the writer drains it.
	SendBuffer int

	// TLS, if set, runs TLS on the connection before the NEO handshake, as
	// NEO/py does. See TLSConfig for NEO/py-compatible settings.
	TLS *tls.Config

	// KeepAlive, if positive, sends a Ping after nothing has arrived for that
	// long and takes the link down if its Pong does not arrive within
	// KeepAliveTimeout. While the Ping waits, it reads for every Conn.
	KeepAlive        time.Duration
	KeepAliveTimeout time.Duration

	// AnswerPing makes the link answer an incoming Ping on a new id with
	// Pong itself, as NEO/py's default handler does, instead of passing it
	// to Accept or Recv1. Peers' keepalive pings then work even when the
	// application is not accepting.
	AnswerPing bool

	// OnHandshakeError, if set, is called by a LinkListener for each
	// incoming connection whose handshake failed (the connection is closed).
	OnHandshakeError func(remote net.Addr, err error)

	// OnUnsolicitedError, if set, is called with an Error packet that no
	// receiver takes: its id matches no connection (NEO/py sends such Errors
	// before aborting), or its connection no longer receives. Such Errors
	// are never answered. It runs on a receiving goroutine and must not block.
	OnUnsolicitedError func(id uint32, e *proto.Error)
}

// DefaultConfig returns the default configuration: N framing for dialers and
// auto-detection for listeners, 64 MiB packets, 16 MiB per Conn and 64 MiB
// per link of unread data, a backlog of 1024, a 4 MiB send buffer and a 10 s
// handshake timeout.
func DefaultConfig() *Config {
	return &Config{
		HandshakeTimeout: 10 * time.Second,
		MaxPacketSize:    proto.MaxPacketSize,
		ConnRecvBuffer:   16 << 20,
		LinkRecvBuffer:   64 << 20,
		AcceptBacklog:    1024,
		SendBuffer:       4 << 20,
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
