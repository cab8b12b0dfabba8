package neonet

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

var errTooManyFiles = syscall.EMFILE

// TCP keepalive as NEO/py sets it (docs/reference.md §1.9).
var neoKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 60 * time.Second, Interval: 10 * time.Second, Count: 3}

// DialLink connects to addr on the named network ("tcp", "unix", ...),
// performs the handshake (TLS first if cfg.TLS is set) and returns the link,
// as the Dialer. cfg may be nil for DefaultConfig. TCP connections get
// TCP_NODELAY and NEO/py's keepalive settings (idle 60 s, interval 10 s,
// 3 probes). ctx bounds the dial and the handshake.
func DialLink(ctx context.Context, network, addr string, cfg *Config) (*NodeLink, error) {
	cfg = orDefault(cfg)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := net.Dialer{KeepAliveConfig: neoKeepAlive}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return NewLink(ctx, nc, Dialer, cfg)
}

// LinkListener accepts handshaked links. Each incoming connection is
// handshaked in its own goroutine under Config.HandshakeTimeout, so a silent
// or slow client never holds up the others. At most maxHandshakes run at
// once (beyond that the kernel's listen backlog holds new connections), and
// at most Config.AcceptBacklog handshaked links wait for Accept; a link
// handshaked while that queue is full is closed and counted as a failure.
// Its methods are safe for concurrent use.
type LinkListener struct {
	l   net.Listener
	cfg *Config

	links  chan *NodeLink // handshaked links waiting for Accept
	slots  chan struct{}  // handshakes in flight
	closed chan struct{}
	ctx    context.Context // ends at Close, aborting handshakes in flight
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup // the accept loop and handshakes in flight

	mu       sync.Mutex
	err      error // the net.Listener's permanent error
	failures uint64
}

// ListenLink listens on addr and returns a LinkListener. cfg may be nil for
// DefaultConfig; its Encoding 0 means auto-detect each peer's encoding.
func ListenLink(network, addr string, cfg *Config) (*LinkListener, error) {
	cfg = orDefault(cfg)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{KeepAliveConfig: neoKeepAlive}
	l, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	return NewLinkListener(l, cfg), nil
}

// NewLinkListener serves links over an existing net.Listener, which it owns
// from then on. cfg may be nil for DefaultConfig.
func NewLinkListener(l net.Listener, cfg *Config) *LinkListener {
	cfg = orDefault(cfg)
	ll := &LinkListener{
		l:      l,
		cfg:    cfg,
		links:  make(chan *NodeLink, cfg.AcceptBacklog),
		slots:  make(chan struct{}, maxHandshakes),
		closed: make(chan struct{}),
	}
	ll.ctx, ll.cancel = context.WithCancel(context.Background())
	ll.wg.Add(1)
	go ll.serve()
	return ll
}

// Addr returns the listener's network address.
func (ll *LinkListener) Addr() net.Addr { return ll.l.Addr() }

// HandshakeFailures returns how many incoming connections failed their
// handshake and were closed.
func (ll *LinkListener) HandshakeFailures() uint64 {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	return ll.failures
}

func (ll *LinkListener) serve() {
	defer ll.wg.Done()
	var delay time.Duration
	for {
		nc, err := ll.l.Accept()
		if err != nil {
			select {
			case <-ll.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			ll.mu.Lock()
			ll.err = err
			ll.mu.Unlock()
			ll.shutdown()
			return
		}
		delay = 0
		select {
		case ll.slots <- struct{}{}:
		case <-ll.closed:
			nc.Close()
			return
		}
		ll.wg.Add(1)
		go ll.handshake(nc)
	}
}

// maxHandshakes bounds the handshakes a LinkListener runs at once.
const maxHandshakes = 256

func (ll *LinkListener) handshake(nc net.Conn) {
	defer ll.wg.Done()
	defer func() { <-ll.slots }()
	link, err := NewLink(ll.ctx, nc, Listener, ll.cfg)
	if err != nil {
		ll.mu.Lock()
		ll.failures++
		ll.mu.Unlock()
		if ll.cfg.OnHandshakeError != nil {
			ll.cfg.OnHandshakeError(nc.RemoteAddr(), err)
		}
		return
	}
	select {
	case ll.links <- link:
	default: // Accept is not keeping up: refuse rather than pile up
		link.Close()
		ll.mu.Lock()
		ll.failures++
		ll.mu.Unlock()
	}
}

// Accept waits for the next handshaked link. After Close it returns
// net.ErrClosed; if the underlying listener failed, its error.
func (ll *LinkListener) Accept() (*NodeLink, error) { return ll.AcceptContext(context.Background()) }

// AcceptContext is Accept that also returns ctx.Err() when ctx ends first.
func (ll *LinkListener) AcceptContext(ctx context.Context) (*NodeLink, error) {
	select {
	case link := <-ll.links:
		return link, nil
	case <-ll.closed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case link := <-ll.links: // handshaked before the close: still the caller's
		return link, nil
	default:
	}
	ll.mu.Lock()
	defer ll.mu.Unlock()
	if ll.err != nil {
		return nil, ll.err
	}
	return nil, net.ErrClosed
}

// Close stops listening, aborts handshakes in flight, closes links that were
// handshaked but not accepted, and waits for its goroutines to finish.
func (ll *LinkListener) Close() error {
	err := ll.shutdown()
	ll.wg.Wait()
	for {
		select {
		case link := <-ll.links:
			link.Close()
		default:
			return err
		}
	}
}

func (ll *LinkListener) shutdown() error {
	var err error
	ll.once.Do(func() {
		close(ll.closed)
		ll.cancel()
		err = ll.l.Close()
	})
	return err
}
