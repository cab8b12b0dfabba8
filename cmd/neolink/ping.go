package main

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// pingCommand is "neolink ping": round trips to a NEO node.
func pingCommand() *command {
	return &command{
		name:    "ping",
		args:    "ADDR[:PORT]",
		summary: "measure round trips to a NEO node (neolink serve, NEO/py)",
		about: `Ping connects to ADDR (port ` + defaultPort + ` if none is given), identifies as a
client of the cluster, then does round trips over CONCURRENCY goroutines:
each with a conn of its own asking in turn (full mode), or asking on a
fresh id each time (-light). A round trip is Ping -> Pong, or with -size N,
AskObject(oid N) -> AnswerObject, checked as any NEO client checks it: the
oid, checksum == SHA-1 of the data as sent, and the data length (after zlib
decompression when the answer says it is compressed) equal to N. neolink
serve answers oid N with N bytes; so can any node that stores such objects.

The run stops after COUNT round trips (-n, default 1000), after DURATION
(-d), at the first failure (unless -continue), at -timeout, or on Ctrl-C,
and then prints a summary: round trips ok, failed and not attempted, RTT
min/mean/stddev and percentiles up to p99.9, a histogram, the rate, and
MB/s of object data with -size. Ctrl-C prints the summary so far and exits
with status 130. -i prints a line per interval while running. -json prints
one JSON object instead, also when the connection fails:
  {"addr","params":{...},"ok","failed","not_attempted","cut_short",
   "count","errors","elapsed_s","min_us","mean_us","stddev_us","p50_us",
   "p90_us","p99_us","p999_us","max_us","rps","mb_per_s","histogram":[...],
   "intervals":[...],"stopped","error"}
("count" is ok+failed+cut_short, "errors" is failed; "cut_short" counts
round trips under way when Ctrl-C or -timeout ended the run.)

With -continue, failed round trips are counted and the run goes on; when
the link goes down, ping dials again (at most once a second). The exit
status is 0 only if every planned round trip succeeded.`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			o := new(pingOpts)
			fs.IntVar(&o.count, "n", 0, "do `COUNT` round trips (default 1000; with -d, no limit)")
			fs.Var(&o.dur, "d", "run for `DURATION` (e.g. 30s), then stop starting round trips")
			fs.IntVar(&o.conc, "c", 1, "`CONCURRENCY` goroutines do the round trips, each with its own conn in full mode")
			fs.BoolVar(&o.light, "light", false, "light mode: a fresh id per request (Ask1) instead of conns")
			fs.StringVar(&o.encoding, "encoding", "N", "wire `ENCODING` to speak: N or M (NEO/py)")
			fs.Var(&o.size, "size", "ask AskObject of oid SIZE and check an answer of `SIZE` bytes (4096, 4k, 1MiB, 2MB) instead of Ping")
			fs.Var(&o.rate, "rate", "start at most `RATE` round trips, in all (1000, 1000/s, 50/ms, 30/m)")
			fs.Var(&o.interval, "i", "print a report line every `INTERVAL` (e.g. 1s) while running")
			fs.BoolVar(&o.cont, "continue", false, "count failures and go on (and dial again when the link goes down) instead of stopping")
			fs.StringVar(&o.cluster, "cluster", "neo", "cluster `NAME` to identify with")
			fs.BoolVar(&o.json, "json", false, "print one JSON object on stdout instead of text")
			durationVar(fs, &o.handshakeTimeout, "handshake-timeout", 10*time.Second, "give up on a peer that does not complete the NEO handshake within `DURATION`")
			fs.Var(&o.timeout, "timeout", "bound the whole run, connection included, to `DURATION` (default 60s, or -d plus 30s)")
			o.tls.register(fs)
			return func(args []string) error {
				if len(args) != 1 {
					return usagef("want exactly one ADDR, got %d arguments", len(args))
				}
				return o.run(args[0])
			}
		},
	}
}

// pingOpts are the flags of ping.
type pingOpts struct {
	count, conc      int
	dur              durationFlag
	light, cont      bool
	encoding         string
	size             sizeFlag
	rate             rateFlag
	interval         durationFlag
	cluster          string
	json             bool
	timeout          durationFlag
	handshakeTimeout time.Duration
	tls              tlsFlags
	total            int64 // planned round trips; -1: no limit (-d alone)
	runTimeout       time.Duration
	enc              proto.Encoding
	neonetConfig     *neonet.Config
}

// defaultPingCount is COUNT when neither -n nor -d is given.
const defaultPingCount = 1000

// check validates the flags, before anything touches the network.
func (o *pingOpts) check() error {
	switch {
	case o.count < 0:
		return usagef("-n must not be negative")
	case o.conc < 1:
		return usagef("-c must be at least 1")
	case o.timeout.set && o.timeout.d == 0:
		return usagef("-timeout must be positive")
	case o.dur.set && o.dur.d == 0:
		return usagef("-d must be positive")
	case o.interval.set && o.interval.d < time.Millisecond:
		return usagef("-i must be at least 1ms")
	case o.handshakeTimeout <= 0:
		return usagef("-handshake-timeout must be positive")
	}
	var err error
	if o.enc, err = parseEncoding(o.encoding, false); err != nil {
		return err
	}
	if o.size.set {
		if limit := maxAnswerData(o.enc, o.size.v); o.size.v > limit {
			return usagef("-size %d is too large: an AnswerObject packet holds at most %d bytes of data (64 MiB less %d bytes of header and fields) in the %v encoding",
				o.size.v, limit, proto.MaxPacketSize-limit, o.enc)
		}
	}
	o.total = int64(o.count)
	switch {
	case o.count == 0 && o.dur.set:
		o.total = -1
	case o.count == 0:
		o.total = defaultPingCount
	}
	o.runTimeout = o.timeout.d
	if !o.timeout.set {
		o.runTimeout = 60 * time.Second
		if o.dur.set {
			o.runTimeout = o.dur.d + 30*time.Second
		}
	}
	cfg := neonet.DefaultConfig()
	cfg.Encoding = o.enc
	cfg.HandshakeTimeout = o.handshakeTimeout
	if cfg.TLS, err = o.tls.config(); err != nil {
		return err
	}
	o.neonetConfig = cfg
	return nil
}

// run pings addr, prints the summary and returns the outcome.
func (o *pingOpts) run(addr string) error {
	if err := o.check(); err != nil {
		return err
	}
	addr = withDefaultPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), o.runTimeout)
	defer cancel()
	// Ctrl-C (or SIGTERM) ends the run like -timeout; the summary follows.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var caught atomic.Value // os.Signal
	go func() {
		select {
		case s := <-sigs:
			caught.Store(s)
			cancel()
		case <-ctx.Done():
		}
	}()

	p := &pinger{o: o, addr: addr, ctx: ctx}
	if !o.json {
		fmt.Printf("PING %s: %s\n", addr, o.describe())
	}
	res := p.run()
	if s, ok := caught.Load().(os.Signal); ok {
		res.stopped = "signal " + s.String()
	} else if ctx.Err() != nil && !(o.total >= 0 && res.ok+res.failed >= o.total) {
		res.stopped = "timeout"
	}
	if err := o.print(os.Stdout, addr, res); err != nil {
		return err
	}
	return o.outcome(res)
}

// describe says what the run does, for the first line of the text output.
func (o *pingOpts) describe() string {
	mode := fmt.Sprintf("full mode, %d conns", o.workers())
	switch {
	case o.light:
		mode = fmt.Sprintf("light mode, %d concurrent", o.workers())
	case o.workers() == 1:
		mode = "full mode, 1 conn"
	}
	what := "Ping"
	if o.size.set {
		what = fmt.Sprintf("AskObject of %d bytes", o.size.v)
	}
	return fmt.Sprintf("%v encoding, %s, %s", o.enc, mode, what)
}

// workers returns how many goroutines do round trips: never more than the
// round trips planned.
func (o *pingOpts) workers() int {
	if o.total >= 0 {
		return int(min(int64(o.conc), max(o.total, 1)))
	}
	return o.conc
}

// outcome turns the result into the command's error, if any.
func (o *pingOpts) outcome(res *pingResult) error {
	counts := res.counts()
	switch {
	case strings.HasPrefix(res.stopped, "signal "):
		code := 130
		if res.stopped == "signal "+syscall.SIGTERM.String() {
			code = 143
		}
		return &exitError{code: code, msg: "interrupted: " + counts}
	case res.connectErr != nil:
		return res.connectErr
	case res.stopped == "timeout":
		return fmt.Errorf("timed out after %v: %s", o.runTimeout, counts)
	case res.failed > 0:
		return fmt.Errorf("%d of %d round trips failed (%s): %s", res.failed, res.ok+res.failed, counts, res.errText)
	case o.total >= 0 && res.ok < o.total && !o.dur.set: // with -d, reaching it first is the plan
		return fmt.Errorf("stopped early: %s", counts)
	}
	return nil
}

// pingResult is the outcome of a run.
type pingResult struct {
	ok, failed, cut int64 // cut: under way when the run was ended
	notAttempted    int64 // -1 when there was no plan (-d without -n)
	hist            latHist
	elapsed         time.Duration
	errText         string // the first failure
	connectErr      error  // the initial connection failed
	stopped         string // "", "timeout", "signal interrupt"...
	intervals       []intervalStat
}

// counts summarises the counters, as "998 ok, 2 failed, 0 not attempted".
func (r *pingResult) counts() string {
	s := fmt.Sprintf("%d ok, %d failed", r.ok, r.failed)
	if r.cut > 0 {
		s += fmt.Sprintf(", %d cut short", r.cut)
	}
	if r.notAttempted >= 0 {
		s += fmt.Sprintf(", %d not attempted", r.notAttempted)
	}
	return s
}

// pinger is one run of ping.
type pinger struct {
	o    *pingOpts
	addr string
	ctx  context.Context // ends on -timeout or a signal: in-flight round trips are cut

	claimed atomic.Int64 // round trips started (or about to)
	ok      atomic.Int64
	failed  atomic.Int64
	cut     atomic.Int64
	rttSum  atomic.Int64 // ns, of the successful round trips, for interval reports
	stop    atomic.Bool  // no more round trips: failure without -continue
	start   time.Time

	mu      sync.Mutex
	link    *neonet.NodeLink // the current link; nil after it failed, with -continue
	errText string           // the first failure
}

// run connects and does the round trips.
func (p *pinger) run() *pingResult {
	res := &pingResult{notAttempted: p.o.total}
	link, err := p.connect()
	if err != nil {
		res.connectErr = err
		res.errText = err.Error()
		return res
	}
	p.link = link
	defer func() {
		p.mu.Lock()
		if p.link != nil {
			p.link.Close()
		}
		p.mu.Unlock()
	}()

	n := p.o.workers()
	hists := make([]latHist, n)
	done := make(chan struct{})
	p.start = time.Now()
	var reporter sync.WaitGroup
	if p.o.interval.set {
		reporter.Go(func() { res.intervals = p.reportIntervals(done) })
	} else if !p.o.json && p.o.total > 0 {
		reporter.Go(func() { progress(done, &p.ok, &p.failed, p.o.total) })
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { p.worker(&hists[i]) })
	}
	wg.Wait()
	res.elapsed = time.Since(p.start)
	close(done)
	reporter.Wait()
	for i := range hists {
		res.hist.merge(&hists[i])
	}
	res.ok, res.failed, res.cut = p.ok.Load(), p.failed.Load(), p.cut.Load()
	if p.o.total >= 0 {
		res.notAttempted = p.o.total - res.ok - res.failed - res.cut
	}
	res.errText = p.errText
	return res
}

// connect dials and identifies, explaining the failures people meet.
func (p *pinger) connect() (*neonet.NodeLink, error) {
	var d net.Dialer
	nc, err := d.DialContext(p.ctx, "tcp", p.addr)
	if err != nil {
		if p.ctx.Err() != nil {
			return nil, fmt.Errorf("cannot connect to %s: %s", p.addr, p.ctxReason())
		}
		return nil, fmt.Errorf("cannot connect to %s: %w", p.addr, err)
	}
	cfg := p.o.neonetConfig
	link, err := neonet.NewLink(p.ctx, nc, neonet.Dialer, cfg)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && p.ctx.Err() == nil {
			hint := "not a NEO node, or a TLS listener (give -ca, -cert, -key)?"
			if cfg.TLS != nil {
				hint = "not a NEO node, or a plain (non-TLS) one?"
			}
			return nil, fmt.Errorf("no NEO handshake from %s within %v: %s", p.addr, cfg.HandshakeTimeout, hint)
		}
		if p.ctx.Err() != nil {
			return nil, fmt.Errorf("cannot connect to %s: %s", p.addr, p.ctxReason())
		}
		return nil, fmt.Errorf("cannot connect to %s: %w%s", p.addr, err, p.handshakeHint(err))
	}
	if err := p.identify(link); err != nil {
		link.Close()
		if p.ctx.Err() != nil {
			return nil, fmt.Errorf("identification to %s: %s", p.addr, p.ctxReason())
		}
		return nil, fmt.Errorf("identification to %s failed: %s", p.addr, explain(link, err))
	}
	return link, nil
}

// handshakeHint suggests, after a failed handshake, what the peer may want.
func (p *pinger) handshakeHint(err error) string {
	switch {
	case p.o.neonetConfig.TLS != nil:
		return " (with TLS: the peer may be a plain NEO node, or refuse our certificate)"
	case errors.Is(err, io.EOF) && p.o.enc == proto.EncodingN:
		return " (the peer may require TLS: give -ca, -cert, -key; or speak only the M encoding, as NEO/py does: -encoding M)"
	case errors.Is(err, io.EOF):
		return " (the peer may require TLS: give -ca, -cert, -key)"
	}
	return ""
}

// ctxReason says why the run's ctx ended.
func (p *pinger) ctxReason() string {
	if errors.Is(p.ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %v", p.o.runTimeout)
	}
	return "interrupted"
}

// identify sends RequestIdentification as a client and checks the answer.
func (p *pinger) identify(link *neonet.NodeLink) error {
	req := &proto.RequestIdentification{NodeType: proto.Client, Name: p.o.cluster}
	var resp proto.AcceptIdentification
	if p.o.light {
		return link.Ask1Context(p.ctx, req, &resp)
	}
	c, err := link.NewConn()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.AskContext(p.ctx, req, &resp)
}

// getLink returns the current link, dialing again (with -continue) if the
// previous one went down. Concurrent callers share one dial.
func (p *pinger) getLink() (*neonet.NodeLink, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link != nil && p.link.Err() == nil {
		return p.link, nil
	}
	if p.link != nil && !p.o.cont {
		return nil, errors.New(explain(p.link, nil))
	}
	if p.link != nil {
		p.link.Close()
		p.link = nil
	}
	link, err := p.connect()
	if err != nil {
		return nil, err
	}
	p.link = link
	return link, nil
}

// claim reserves the next round trip and waits for its turn under -rate.
// It reports false when the run is over.
func (p *pinger) claim() bool {
	if p.stop.Load() || p.ctx.Err() != nil {
		return false
	}
	if p.o.dur.set && time.Since(p.start) >= p.o.dur.d {
		return false
	}
	k := p.claimed.Add(1)
	if p.o.total >= 0 && k > p.o.total {
		return false
	}
	if p.o.rate.period > 0 {
		at := p.start.Add(time.Duration(k-1) * p.o.rate.period)
		if wait := time.Until(at); wait > 0 {
			if p.o.dur.set && at.Sub(p.start) >= p.o.dur.d {
				p.claimed.Add(-1)
				return false
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-p.ctx.Done():
				t.Stop()
				p.claimed.Add(-1)
				return false
			}
		}
	}
	return true
}

// fail records a failed round trip; it ends the run unless -continue.
func (p *pinger) fail(err string) {
	if p.ctx.Err() != nil {
		p.cut.Add(1) // cut by Ctrl-C or -timeout: not the peer's failure
		return
	}
	p.failed.Add(1)
	p.mu.Lock()
	if p.errText == "" {
		p.errText = err
	}
	p.mu.Unlock()
	if !p.o.cont {
		p.stop.Store(true)
	}
}

// worker does round trips until the run is over, recording RTTs in h.
func (p *pinger) worker(h *latHist) {
	var (
		link *neonet.NodeLink
		conn *neonet.Conn
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	var req, resp proto.Msg = &proto.Ping{}, &proto.Pong{}
	var ans *proto.AnswerObject
	if p.o.size.set {
		ans = new(proto.AnswerObject)
		req, resp = &proto.AskObject{OID: proto.Oid(p.o.size.v)}, ans
	}
	for p.claim() {
		l, err := p.getLink()
		if err != nil {
			p.fail(err.Error())
			if p.o.cont {
				sleepCtx(p.ctx, time.Second) // dial again at most once a second
			}
			continue
		}
		if l != link || conn == nil {
			if conn != nil {
				conn.Close()
				conn = nil
			}
			link = l
			if !p.o.light {
				if conn, err = link.NewConn(); err != nil {
					p.fail(explain(link, err))
					continue
				}
			}
		}
		t0 := time.Now()
		if conn != nil {
			err = conn.AskContext(p.ctx, req, resp)
		} else {
			err = link.Ask1Context(p.ctx, req, resp)
		}
		rtt := time.Since(t0)
		if err == nil && ans != nil {
			err = checkObject(ans, p.o.size.v)
		}
		if err != nil {
			p.fail(explain(link, err))
			continue
		}
		h.record(rtt)
		p.rttSum.Add(int64(rtt))
		p.ok.Add(1)
	}
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// zeroHash is the checksum NEO sends with no data: an object whose creation
// was undone.
var zeroHash = make([]byte, sha1.Size)

// checkObject checks an AnswerObject for oid as any NEO client does: the
// oid, checksum == SHA-1 of the data as sent, and here also the length of
// the (decompressed) data, which must be size.
func checkObject(a *proto.AnswerObject, size uint64) error {
	if uint64(a.OID) != size {
		return fmt.Errorf("bad AnswerObject: oid %v, want %v", a.OID, proto.Oid(size))
	}
	if len(a.Data) == 0 && bytes.Equal(a.Checksum, zeroHash) {
		return fmt.Errorf("AnswerObject for oid %v has no data (its creation was undone)", a.OID)
	}
	if sum := sha1.Sum(a.Data); !bytes.Equal(a.Checksum, sum[:]) {
		return fmt.Errorf("bad AnswerObject: checksum %x, but the SHA-1 of its %d bytes of data is %x", a.Checksum, len(a.Data), sum)
	}
	n := uint64(len(a.Data))
	switch c := a.Compression; {
	case !c.Valid || c.V == 0:
	case c.V == 1: // zlib, NEO's only compression
		zr, err := zlib.NewReader(bytes.NewReader(a.Data))
		if err != nil {
			return fmt.Errorf("bad AnswerObject: compressed data: %v", err)
		}
		m, err := io.Copy(io.Discard, io.LimitReader(zr, int64(size)+1))
		if err == nil {
			err = zr.Close()
		}
		if err != nil {
			return fmt.Errorf("bad AnswerObject: compressed data: %v", err)
		}
		n = uint64(m)
	default:
		return fmt.Errorf("bad AnswerObject: unknown compression %d", c.V)
	}
	if n != size {
		return fmt.Errorf("bad AnswerObject: %d bytes of data, want %d", n, size)
	}
	return nil
}

// explain describes why a request failed, preferring the link's state.
func explain(link *neonet.NodeLink, err error) string {
	var pe *proto.Error
	if errors.As(err, &pe) {
		msg := "peer answered " + pe.Error()
		if pe.Code == proto.CodeProtocolError && (pe.Message == "connection refused" || pe.Message == "connection closed") {
			msg += " (the peer limits the conns of a link: against neolink serve, raise -backlog, -link-handlers and -idle-conns above -c)"
		}
		return msg
	}
	switch lerr := link.Err(); {
	case lerr == nil:
	case errors.Is(lerr, io.EOF):
		return "the link went down: peer closed the connection"
	case errors.Is(lerr, neonet.ErrLinkClosed):
		if err != nil && !errors.Is(err, neonet.ErrLinkClosed) {
			return err.Error()
		}
		return "the link was closed"
	default:
		return "the link went down: " + lerr.Error()
	}
	if err == nil {
		return "not done"
	}
	return err.Error()
}

// intervalStat is one -i report.
type intervalStat struct {
	From   float64 `json:"from_s"`
	To     float64 `json:"to_s"`
	OK     int64   `json:"ok"`
	Failed int64   `json:"failed"`
	RPS    float64 `json:"rps"`
	MeanUS float64 `json:"mean_us"`
	MBps   float64 `json:"mb_per_s,omitempty"`
}

// reportIntervals prints (text mode) and returns a line per -i interval
// until done is closed, then one for the last partial interval.
func (p *pinger) reportIntervals(done <-chan struct{}) []intervalStat {
	tick := time.NewTicker(p.o.interval.d)
	defer tick.Stop()
	var (
		out                []intervalStat
		lastOK, lastFailed int64
		lastSum            int64
		last               time.Duration
	)
	emit := func(now time.Duration) {
		ok, failed, sum := p.ok.Load(), p.failed.Load(), p.rttSum.Load()
		span := (now - last).Seconds()
		st := intervalStat{From: round(last.Seconds(), 1000), To: round(now.Seconds(), 1000),
			OK: ok - lastOK, Failed: failed - lastFailed}
		if span > 0 {
			st.RPS = round(float64(st.OK)/span, 10)
			if p.o.size.set {
				st.MBps = round(float64(st.OK)*float64(p.o.size.v)/span/1e6, 100)
			}
		}
		if st.OK > 0 {
			st.MeanUS = round(float64(sum-lastSum)/float64(st.OK)/1e3, 10)
		}
		out = append(out, st)
		if !p.o.json {
			line := fmt.Sprintf("[%7.2f-%7.2f s] %8d ok %6d failed %10.1f rt/s  mean %8.1f µs",
				st.From, st.To, st.OK, st.Failed, st.RPS, st.MeanUS)
			if p.o.size.set {
				line += fmt.Sprintf("  %8.2f MB/s", st.MBps)
			}
			fmt.Println(line)
		}
		lastOK, lastFailed, lastSum, last = ok, failed, sum, now
	}
	for {
		select {
		case <-tick.C:
			emit(time.Since(p.start))
		case <-done:
			now := time.Since(p.start)
			if now-last >= time.Millisecond || p.ok.Load() != lastOK || p.failed.Load() != lastFailed {
				emit(now) // the last, partial interval: every round trip is in some line
			}
			return out
		}
	}
}

// pingJSON is the -json output.
type pingJSON struct {
	Addr         string         `json:"addr"`
	Params       pingParams     `json:"params"`
	OK           int64          `json:"ok"`
	Failed       int64          `json:"failed"`
	NotAttempted *int64         `json:"not_attempted,omitempty"`
	CutShort     int64          `json:"cut_short"`
	Count        int64          `json:"count"`
	Errors       int64          `json:"errors"`
	Elapsed      float64        `json:"elapsed_s"`
	Min          float64        `json:"min_us"`
	Mean         float64        `json:"mean_us"`
	Stddev       float64        `json:"stddev_us"`
	P50          float64        `json:"p50_us"`
	P90          float64        `json:"p90_us"`
	P99          float64        `json:"p99_us"`
	P999         float64        `json:"p999_us"`
	Max          float64        `json:"max_us"`
	RPS          float64        `json:"rps"`
	MBps         float64        `json:"mb_per_s,omitempty"`
	Histogram    []histJSON     `json:"histogram"`
	Intervals    []intervalStat `json:"intervals,omitempty"`
	Stopped      string         `json:"stopped,omitempty"`
	Error        string         `json:"error,omitempty"`
}

// pingParams are the run's parameters, in the -json output.
type pingParams struct {
	Count       int64   `json:"count,omitempty"`
	Duration    float64 `json:"duration_s,omitempty"`
	Concurrency int     `json:"concurrency"`
	Light       bool    `json:"light"`
	Encoding    string  `json:"encoding"`
	Request     string  `json:"request"`
	Size        *uint64 `json:"size,omitempty"`
	Rate        float64 `json:"rate_per_s,omitempty"`
	Interval    float64 `json:"interval_s,omitempty"`
	Timeout     float64 `json:"timeout_s"`
	Continue    bool    `json:"continue"`
	Cluster     string  `json:"cluster"`
	TLS         bool    `json:"tls"`
}

// histJSON is one histogram bar in the -json output.
type histJSON struct {
	Lo float64 `json:"lo_us"`
	Hi float64 `json:"hi_us"`
	N  uint64  `json:"n"`
}

// rates returns round trips/s and MB/s of object data (0 without -size).
func (o *pingOpts) rates(res *pingResult) (rps, mbps float64) {
	if res.elapsed <= 0 {
		return 0, 0
	}
	rps = float64(res.ok) / res.elapsed.Seconds()
	if o.size.set {
		mbps = rps * float64(o.size.v) / 1e6
	}
	return rps, mbps
}

// print writes the result as text or JSON.
func (o *pingOpts) print(w io.Writer, addr string, res *pingResult) error {
	rps, mbps := o.rates(res)
	h := &res.hist
	if o.json {
		j := pingJSON{
			Addr: addr,
			Params: pingParams{Duration: o.dur.d.Seconds(), Concurrency: o.workers(), Light: o.light,
				Encoding: o.enc.String(), Request: "Ping", Rate: o.rate.perSec, Interval: o.interval.d.Seconds(),
				Timeout: o.runTimeout.Seconds(), Continue: o.cont, Cluster: o.cluster, TLS: o.neonetConfig.TLS != nil},
			OK: res.ok, Failed: res.failed, CutShort: res.cut,
			Count: res.ok + res.failed + res.cut, Errors: res.failed,
			Elapsed: round(res.elapsed.Seconds(), 1e6),
			Min:     micros(h.min), Mean: round(h.mean(), 10), Stddev: round(h.stddev(), 10),
			P50: micros(h.percentile(0.50)), P90: micros(h.percentile(0.90)), P99: micros(h.percentile(0.99)),
			P999: micros(h.percentile(0.999)), Max: micros(h.max),
			RPS: round(rps, 10), MBps: round(mbps, 100),
			Histogram: []histJSON{}, Intervals: res.intervals, Stopped: res.stopped, Error: res.errText,
		}
		if o.total >= 0 {
			j.Params.Count = o.total
			j.NotAttempted = &res.notAttempted
		}
		if o.size.set {
			j.Params.Request, j.Params.Size = "AskObject", &o.size.v
		}
		for _, b := range h.bars(10) {
			j.Histogram = append(j.Histogram, histJSON{Lo: micros(b.lo), Hi: micros(b.hi), N: b.n})
		}
		b, err := json.Marshal(j)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	if res.connectErr != nil {
		return nil // the error line on stderr says it all
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s ping summary ---\n", addr)
	fmt.Fprintf(&sb, "round trips: %s, in %s", res.counts(), fmtDuration(res.elapsed))
	if res.stopped != "" {
		fmt.Fprintf(&sb, " (stopped by %s)", res.stopped)
	}
	sb.WriteByte('\n')
	if h.n > 0 {
		fmt.Fprintf(&sb, "rtt µs: min %.1f  mean %.1f  stddev %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
			micros(h.min), h.mean(), h.stddev(), micros(h.percentile(0.50)), micros(h.percentile(0.90)),
			micros(h.percentile(0.99)), micros(h.percentile(0.999)), micros(h.max))
		printHistogram(&sb, h.bars(10), 40)
	}
	fmt.Fprintf(&sb, "%.1f round trips/s", rps)
	if o.size.set {
		fmt.Fprintf(&sb, ", %.2f MB/s of object data", mbps)
	}
	sb.WriteByte('\n')
	_, err := io.WriteString(w, sb.String())
	return err
}

// progress draws a progress bar of ok+failed out of total on stderr, if it
// is a terminal, until done is closed.
func progress(done <-chan struct{}, ok, failed *atomic.Int64, total int64) {
	fi, err := os.Stderr.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 || total <= 0 {
		return
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		n := ok.Load() + failed.Load()
		const width = 40
		fill := int(n * width / total)
		fmt.Fprintf(os.Stderr, "\r[%s%s] %3d%% %d/%d", strings.Repeat("#", fill),
			strings.Repeat(" ", width-fill), n*100/total, n, total)
		select {
		case <-done:
			fmt.Fprint(os.Stderr, "\r\033[K")
			return
		case <-tick.C:
		}
	}
}
