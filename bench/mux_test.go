package bench

import (
	"io"
	"net"

	"github.com/hashicorp/yamux"
	"github.com/xtaci/smux"
)

// Reference multiplexers over one loopback TCP connection, each with its
// default configuration (yamux's logging sent to io.Discard). The server side
// handles per-request streams inline in its accept loop, as the NodeLink
// Recv1 server does; long-lived streams get a goroutine each. Every variant
// is written once against session and registered for both libraries.

// session is what the benchmarks use of a multiplexer session.
type session interface {
	open() (io.ReadWriteCloser, error)
	accept() (io.ReadWriteCloser, error)
	Close() error
}

// mux is one multiplexer library: it makes the client and server sessions
// over a connection.
type mux struct {
	name           string
	client, server func(net.Conn) (session, error)
}

var muxes = []mux{
	{"yamux", yamuxClient, yamuxServer},
	{"smux", smuxClient, smuxServer},
}

func init() {
	for _, m := range muxes {
		rttVariants[m.name+"-stream"] = func(e *env) rttFunc {
			cli, srv := muxPair(e, m)
			e.serve(m.name+" server", func() error {
				s, err := srv.accept()
				if err != nil {
					return err
				}
				return serveStream(s, small)
			})
			return streamRTT(openStream(e, m.name, cli), small)
		}
		rttVariants[m.name+"-stream-per-req"] = func(e *env) rttFunc {
			cli, srv := muxPair(e, m)
			e.serve(m.name+" accept", func() error {
				for {
					s, err := srv.accept()
					if err != nil {
						return err
					}
					if err := serveOnce(s); err != nil {
						return err
					}
				}
			})
			return perRequestRTT(cli.open)
		}
		throughputVariants[m.name] = func(e *env, size, n int) (func(int) error, func() error) {
			cli, srv := muxPair(e, m)
			e.serve(m.name+" sink", func() error {
				s, err := srv.accept()
				if err != nil {
					return err
				}
				return sink(s, size, n)
			})
			return streamThroughput(openStream(e, m.name, cli), size, n)
		}
		parallelVariants[m.name] = func(e *env, workers int, sh shape) []rttFunc {
			cli, srv := muxPair(e, m)
			e.serve(m.name+" accept", func() error {
				for {
					s, err := srv.accept()
					if err != nil {
						return err
					}
					e.serve(m.name+" server", func() error { return serveStream(s, sh) })
				}
			})
			rts := make([]rttFunc, workers)
			for w := range rts {
				rts[w] = streamRTT(openStream(e, m.name, cli), sh)
			}
			return rts
		}
	}
}

// openStream opens one long-lived stream.
func openStream(e *env, name string, cli session) io.ReadWriteCloser {
	s, err := cli.open()
	if err != nil {
		e.fatalf("%s open: %v", name, err)
	}
	return s
}

// yamuxSession adapts a yamux session. A failed open or accept returns a
// nil interface, not a typed nil stream.
type yamuxSession struct{ *yamux.Session }

func (s yamuxSession) open() (io.ReadWriteCloser, error) {
	st, err := s.OpenStream()
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (s yamuxSession) accept() (io.ReadWriteCloser, error) {
	st, err := s.AcceptStream()
	if err != nil {
		return nil, err
	}
	return st, nil
}

// smuxSession adapts an smux session, like yamuxSession.
type smuxSession struct{ *smux.Session }

func (s smuxSession) open() (io.ReadWriteCloser, error) {
	st, err := s.OpenStream()
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (s smuxSession) accept() (io.ReadWriteCloser, error) {
	st, err := s.AcceptStream()
	if err != nil {
		return nil, err
	}
	return st, nil
}

// muxPair returns client and server sessions of m over loopback TCP,
// closed at teardown.
func muxPair(e *env, m mux) (cli, srv session) {
	c, s := tcpPair(e)
	srv, err := m.server(s)
	if err != nil {
		e.fatalf("%s server: %v", m.name, err)
	}
	e.closeOnTeardown(srv)
	cli, err = m.client(c)
	if err != nil {
		e.fatalf("%s client: %v", m.name, err)
	}
	e.closeOnTeardown(cli)
	return cli, srv
}

// yamuxConfig is yamux's default configuration, its logging discarded.
func yamuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	return cfg
}

func yamuxClient(c net.Conn) (session, error) {
	s, err := yamux.Client(c, yamuxConfig())
	if err != nil {
		return nil, err
	}
	return yamuxSession{s}, nil
}

func yamuxServer(c net.Conn) (session, error) {
	s, err := yamux.Server(c, yamuxConfig())
	if err != nil {
		return nil, err
	}
	return yamuxSession{s}, nil
}

func smuxClient(c net.Conn) (session, error) {
	s, err := smux.Client(c, smux.DefaultConfig())
	if err != nil {
		return nil, err
	}
	return smuxSession{s}, nil
}

func smuxServer(c net.Conn) (session, error) {
	s, err := smux.Server(c, smux.DefaultConfig())
	if err != nil {
		return nil, err
	}
	return smuxSession{s}, nil
}
