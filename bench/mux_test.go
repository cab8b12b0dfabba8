package bench

import (
	"io"

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
}

var muxes = []struct {
	name string
	pair func(e *env) (cli, srv session)
}{
	{"yamux", yamuxPair},
	{"smux", smuxPair},
}

func init() {
	for _, m := range muxes {
		rttVariants[m.name+"-stream"] = func(e *env) rttFunc {
			cli, srv := m.pair(e)
			e.serve(m.name+" echo", func() error {
				s, err := srv.accept()
				if err != nil {
					return err
				}
				return echo(s)
			})
			return streamRTT(openStream(e, m.name, cli))
		}
		rttVariants[m.name+"-stream-per-req"] = func(e *env) rttFunc {
			cli, srv := m.pair(e)
			e.serve(m.name+" accept", func() error {
				for {
					s, err := srv.accept()
					if err != nil {
						return err
					}
					if err := echoOnce(s); err != nil {
						return err
					}
				}
			})
			return perRequestRTT(cli.open)
		}
		throughputVariants[m.name] = func(e *env, n int) (func(int) error, func() error) {
			cli, srv := m.pair(e)
			e.serve(m.name+" sink", func() error {
				s, err := srv.accept()
				if err != nil {
					return err
				}
				return sink(s, n)
			})
			return streamThroughput(openStream(e, m.name, cli), n)
		}
		parallelVariants[m.name] = func(e *env, workers int) []rttFunc {
			cli, srv := m.pair(e)
			e.serve(m.name+" accept", func() error {
				for {
					s, err := srv.accept()
					if err != nil {
						return err
					}
					e.serve(m.name+" echo", func() error { return echo(s) })
				}
			})
			rts := make([]rttFunc, workers)
			for w := range rts {
				rts[w] = streamRTT(openStream(e, m.name, cli))
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

// yamuxPair returns client and server yamux sessions over loopback TCP.
func yamuxPair(e *env) (cli, srv session) {
	c, s := tcpPair(e)
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	ys, err := yamux.Server(s, cfg)
	if err != nil {
		e.fatalf("yamux server: %v", err)
	}
	e.closeOnTeardown(ys)
	yc, err := yamux.Client(c, cfg)
	if err != nil {
		e.fatalf("yamux client: %v", err)
	}
	e.closeOnTeardown(yc)
	return yamuxSession{yc}, yamuxSession{ys}
}

// smuxPair returns client and server smux sessions over loopback TCP.
func smuxPair(e *env) (cli, srv session) {
	c, s := tcpPair(e)
	ss, err := smux.Server(s, smux.DefaultConfig())
	if err != nil {
		e.fatalf("smux server: %v", err)
	}
	e.closeOnTeardown(ss)
	sc, err := smux.Client(c, smux.DefaultConfig())
	if err != nil {
		e.fatalf("smux client: %v", err)
	}
	e.closeOnTeardown(sc)
	return smuxSession{sc}, smuxSession{ss}
}
