package neonet

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

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
// handshaked in its own goroutine, so a silent or slow client never holds up
// the others, and the accept loop never stops taking connections from the
// kernel because of them:
//
//   - A peer must send its first byte within FirstByteTimeout (a NEO dialer
//     sends its handshake at once), and finish within
//     Config.HandshakeTimeout.
//   - At most MaxHandshakes handshakes run at once. A new connection beyond
//     that evicts the oldest handshake in flight (closing it), so silent
//     sockets cannot lock real clients out: they can only make each other
//     time out sooner. Evictions are counted (HandshakeEvictions) and
//     reported through Config.OnHandshakeError.
//   - At most Config.AcceptBacklog handshaked links wait for Accept; a link
//     handshaked while that queue is full is closed and counted as a
//     failure.
//   - When the process runs out of file descriptors (EMFILE, ENFILE), the
//     loop backs off (5 ms doubling to 1 s, as net/http does) and reports
//     it through OnAcceptError.
//
// Its methods are safe for concurrent use.
type LinkListener struct {
	l   net.Listener
	cfg *Config

	links  chan *NodeLink // handshaked links waiting for Accept
	closed chan struct{}
	ctx    context.Context // ends at Close, aborting handshakes in flight
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup // the accept loop and handshakes in flight

	mu        sync.Mutex
	err       error // the net.Listener's permanent error
	failures  uint64
	evictions uint64
	inflight  list.List // of *pendingHandshake, oldest first
}

// MaxHandshakes bounds the handshakes a LinkListener runs at once.
const MaxHandshakes = 4096

// FirstByteTimeout bounds how long a LinkListener waits for a new
// connection's first byte, when it is shorter than Config.HandshakeTimeout.
const FirstByteTimeout = 2 * time.Second

// errEvicted is why a handshake was cut short to make room for a new one.
var errEvicted = errors.New("neonet: handshake evicted: too many handshakes in flight (oldest is dropped)")

// pendingHandshake is one handshake in flight, an element of
// LinkListener.inflight (oldest first) until it ends or is evicted.
type pendingHandshake struct {
	cancel context.CancelCauseFunc
	elem   *list.Element // nil once off the list
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
// handshake (evictions included) and were closed.
func (ll *LinkListener) HandshakeFailures() uint64 {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	return ll.failures
}

// HandshakeEvictions returns how many handshakes were cut short because
// MaxHandshakes were in flight.
func (ll *LinkListener) HandshakeEvictions() uint64 {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	return ll.evictions
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
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				if ll.cfg.OnAcceptError != nil {
					ll.cfg.OnAcceptError(fmt.Errorf("neonet: accept: %w; retrying in %v", err, delay))
				}
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
		h := &pendingHandshake{}
		ctx, cancel := context.WithCancelCause(ll.ctx)
		h.cancel = cancel
		ll.mu.Lock()
		if ll.inflight.Len() >= MaxHandshakes {
			old := ll.inflight.Remove(ll.inflight.Front()).(*pendingHandshake)
			old.elem = nil
			ll.evictions++
			old.cancel(errEvicted)
		}
		h.elem = ll.inflight.PushBack(h)
		ll.mu.Unlock()
		ll.wg.Add(1)
		go ll.handshake(ctx, h, nc)
	}
}

func (ll *LinkListener) handshake(ctx context.Context, h *pendingHandshake, nc net.Conn) {
	defer ll.wg.Done()
	link, err := ll.handshakeConn(ctx, nc)
	ll.mu.Lock()
	if h.elem != nil {
		ll.inflight.Remove(h.elem)
		h.elem = nil
	}
	ll.mu.Unlock()
	h.cancel(nil)
	if err != nil {
		if cause := context.Cause(ctx); cause == errEvicted {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
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

// handshakeConn waits for the first byte (bounded by FirstByteTimeout), then
// runs the handshake.
func (ll *LinkListener) handshakeConn(ctx context.Context, nc net.Conn) (*NodeLink, error) {
	if first := min(FirstByteTimeout, ll.cfg.HandshakeTimeout); first < ll.cfg.HandshakeTimeout {
		if err := waitReadable(ctx, nc, first); err != nil {
			nc.Close()
			return nil, fmt.Errorf("neonet: %s: no handshake byte within %v: %w", addrString(nc.RemoteAddr()), first, err)
		}
	}
	return NewLink(ctx, nc, Listener, ll.cfg)
}

// waitReadable waits until nc has a byte to read, without reading it, for
// at most d or until ctx ends. Connections that are not OS sockets are not
// waited for.
func waitReadable(ctx context.Context, nc net.Conn, d time.Duration) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	nc.SetReadDeadline(time.Now().Add(d))
	stop := context.AfterFunc(ctx, func() { nc.SetReadDeadline(aLongTimeAgo) })
	// The poller waits for readability each time readable says there is
	// nothing yet; a byte that arrived before the call is seen at once.
	err = raw.Read(readable)
	stop()
	nc.SetReadDeadline(noDeadline)
	if err != nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
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
