package bench

import (
	"io"

	"github.com/hashicorp/yamux"
	"github.com/xtaci/smux"
)

// Reference multiplexers over one loopback TCP connection, each with its
// default configuration (yamux's logging sent to io.Discard). The server side
// handles per-request streams inline in its accept loop, as the NodeLink
// Recv1 server does; long-lived streams get a goroutine each.

func init() {
	rttVariants["yamux-stream"] = func(e *env) rttFunc {
		cli, srv := yamuxPair(e)
		e.serve("yamux echo", func() error {
			s, err := srv.AcceptStream()
			if err != nil {
				return err
			}
			return echo(s)
		})
		return streamRTT(openYamux(e, cli))
	}
	rttVariants["yamux-stream-per-req"] = func(e *env) rttFunc {
		cli, srv := yamuxPair(e)
		e.serve("yamux accept", func() error {
			for {
				s, err := srv.AcceptStream()
				if err != nil {
					return err
				}
				if err := echoOnce(s); err != nil {
					return err
				}
			}
		})
		return perRequestRTT(cli.OpenStream)
	}
	rttVariants["smux-stream"] = func(e *env) rttFunc {
		cli, srv := smuxPair(e)
		e.serve("smux echo", func() error {
			s, err := srv.AcceptStream()
			if err != nil {
				return err
			}
			return echo(s)
		})
		return streamRTT(openSmux(e, cli))
	}
	rttVariants["smux-stream-per-req"] = func(e *env) rttFunc {
		cli, srv := smuxPair(e)
		e.serve("smux accept", func() error {
			for {
				s, err := srv.AcceptStream()
				if err != nil {
					return err
				}
				if err := echoOnce(s); err != nil {
					return err
				}
			}
		})
		return perRequestRTT(cli.OpenStream)
	}

	throughputVariants["yamux"] = func(e *env, n int) (func(int) error, func() error) {
		cli, srv := yamuxPair(e)
		e.serve("yamux sink", func() error {
			s, err := srv.AcceptStream()
			if err != nil {
				return err
			}
			return sink(s, n)
		})
		return streamThroughput(openYamux(e, cli), n)
	}
	throughputVariants["smux"] = func(e *env, n int) (func(int) error, func() error) {
		cli, srv := smuxPair(e)
		e.serve("smux sink", func() error {
			s, err := srv.AcceptStream()
			if err != nil {
				return err
			}
			return sink(s, n)
		})
		return streamThroughput(openSmux(e, cli), n)
	}

	parallelVariants["yamux"] = func(e *env, workers int) []rttFunc {
		cli, srv := yamuxPair(e)
		e.serve("yamux accept", func() error {
			for {
				s, err := srv.AcceptStream()
				if err != nil {
					return err
				}
				e.serve("yamux echo", func() error { return echo(s) })
			}
		})
		rts := make([]rttFunc, workers)
		for w := range rts {
			rts[w] = streamRTT(openYamux(e, cli))
		}
		return rts
	}
	parallelVariants["smux"] = func(e *env, workers int) []rttFunc {
		cli, srv := smuxPair(e)
		e.serve("smux accept", func() error {
			for {
				s, err := srv.AcceptStream()
				if err != nil {
					return err
				}
				e.serve("smux echo", func() error { return echo(s) })
			}
		})
		rts := make([]rttFunc, workers)
		for w := range rts {
			rts[w] = streamRTT(openSmux(e, cli))
		}
		return rts
	}
}

// yamuxPair returns client and server yamux sessions over loopback TCP.
func yamuxPair(e *env) (cli, srv *yamux.Session) {
	c, s := tcpPair(e)
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	srv, err := yamux.Server(s, cfg)
	if err != nil {
		e.fatalf("yamux server: %v", err)
	}
	e.closeOnTeardown(srv)
	cli, err = yamux.Client(c, cfg)
	if err != nil {
		e.fatalf("yamux client: %v", err)
	}
	e.closeOnTeardown(cli)
	return cli, srv
}

// openYamux opens one long-lived stream.
func openYamux(e *env, cli *yamux.Session) *yamux.Stream {
	s, err := cli.OpenStream()
	if err != nil {
		e.fatalf("yamux open: %v", err)
	}
	return s
}

// smuxPair returns client and server smux sessions over loopback TCP.
func smuxPair(e *env) (cli, srv *smux.Session) {
	c, s := tcpPair(e)
	srv, err := smux.Server(s, smux.DefaultConfig())
	if err != nil {
		e.fatalf("smux server: %v", err)
	}
	e.closeOnTeardown(srv)
	cli, err = smux.Client(c, smux.DefaultConfig())
	if err != nil {
		e.fatalf("smux client: %v", err)
	}
	e.closeOnTeardown(cli)
	return cli, srv
}

// openSmux opens one long-lived stream.
func openSmux(e *env, cli *smux.Session) *smux.Stream {
	s, err := cli.OpenStream()
	if err != nil {
		e.fatalf("smux open: %v", err)
	}
	return s
}
