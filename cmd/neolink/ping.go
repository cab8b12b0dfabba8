package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// pingCommand is "neolink ping": round trips to a NEO node.
func pingCommand() *command {
	return &command{
		name:    "ping",
		args:    "ADDR",
		summary: "measure round trips to a NEO node (neolink serve, or NEO/py)",
		about: `Ping connects to ADDR, identifies as a client of the cluster, then does
COUNT round trips spread over CONCURRENCY goroutines: each its own conn
asking in turn (full mode), or asking on a fresh id each time (-light).
A round trip is Ping -> Pong, or with -size, AskObject of that oid -> an
AnswerObject whose data length and SHA-1 are checked.

It prints RTT percentiles, a histogram and the rate, or with -json one JSON
object: {"count","errors","p50_us","p90_us","p99_us","max_us","rps"}. The
exit status is 0 only if every round trip succeeded. -timeout bounds the
whole run, connection included.`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			o := new(pingOpts)
			fs.IntVar(&o.count, "n", 1000, "do `COUNT` round trips")
			fs.IntVar(&o.conc, "c", 1, "`CONCURRENCY` goroutines do the round trips, each with its own conn in full mode")
			fs.BoolVar(&o.light, "light", false, "light mode: a fresh id per request (Ask1) instead of conns")
			fs.StringVar(&o.encoding, "encoding", "N", "wire `ENCODING` to speak: N or M")
			fs.Var(&o.size, "size", "ask for an object of `BYTES` bytes (AskObject) instead of Ping")
			fs.StringVar(&o.cluster, "cluster", "neo", "cluster `NAME` to identify with")
			fs.BoolVar(&o.json, "json", false, "print one JSON object on stdout instead of text")
			fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "bound the whole run, connection included, to `DURATION`")
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
	count, conc int
	light       bool
	encoding    string
	size        optUint
	cluster     string
	json        bool
	timeout     time.Duration
	tls         tlsFlags

	wantLen uint64 // with -size: the expected data length and SHA-1
	wantSum []byte
}

// optUint is a flag.Value holding an unsigned number that may be unset.
type optUint struct {
	v   uint64
	set bool
}

// String returns the value, or "" if unset.
func (u *optUint) String() string {
	if u == nil || !u.set {
		return ""
	}
	return strconv.FormatUint(u.v, 10)
}

// Set parses a decimal number.
func (u *optUint) Set(s string) error {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errors.New("want a number of bytes")
	}
	u.v, u.set = v, true
	return nil
}

// run pings addr and reports the result.
func (o *pingOpts) run(addr string) error {
	switch {
	case o.count < 0:
		return usagef("-n must not be negative")
	case o.conc < 1:
		return usagef("-c must be at least 1")
	case o.timeout <= 0:
		return usagef("-timeout must be positive")
	}
	enc, err := parseEncoding(o.encoding, false)
	if err != nil {
		return err
	}
	cfg := neonet.DefaultConfig()
	cfg.Encoding = enc
	if cfg.TLS, err = o.tls.config(); err != nil {
		return err
	}
	if o.size.set {
		o.wantLen = objectSize(o.size.v)
		if o.wantLen <= maxObjectSize {
			var store objectStore
			_, o.wantSum, _ = store.get(o.wantLen)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	link, err := neonet.DialLink(ctx, "tcp", addr, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("cannot connect to %s: timed out after %v", addr, o.timeout)
		}
		return fmt.Errorf("cannot connect to %s: %w", addr, err)
	}
	defer link.Close()
	// The run's bound: closing the link fails every pending round trip.
	stop := context.AfterFunc(ctx, func() { link.Close() })
	defer stop()

	if err := o.identify(link); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("identification: timed out after %v", o.timeout)
		}
		return fmt.Errorf("identification failed: %s", explain(link, err))
	}
	res := o.roundTrips(link)
	timedOut := ctx.Err() != nil
	if err := o.print(os.Stdout, addr, enc, res); err != nil {
		return err
	}
	switch {
	case timedOut && res.ok < o.count:
		return fmt.Errorf("timed out after %v: %d of %d round trips done", o.timeout, res.ok, o.count)
	case res.ok < o.count:
		return fmt.Errorf("%d of %d round trips failed: %s", o.count-res.ok, o.count, explain(link, res.err))
	}
	return nil
}

// identify sends RequestIdentification as a client and checks the answer.
func (o *pingOpts) identify(link *neonet.NodeLink) error {
	req := &proto.RequestIdentification{NodeType: proto.Client, Name: o.cluster}
	var resp proto.AcceptIdentification
	if o.light {
		return link.Ask1(req, &resp)
	}
	c, err := link.NewConn()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Ask(req, &resp)
}

// explain describes why a request failed, preferring the link's state.
func explain(link *neonet.NodeLink, err error) string {
	var pe *proto.Error
	if errors.As(err, &pe) {
		return "peer answered " + pe.Error()
	}
	switch lerr := link.Err(); {
	case lerr == nil:
	case errors.Is(lerr, io.EOF):
		return "the link went down: peer closed the connection"
	case errors.Is(lerr, neonet.ErrLinkClosed):
		return "the link was closed"
	default:
		return "the link went down: " + lerr.Error()
	}
	if err == nil {
		return "not done"
	}
	return err.Error()
}

// pingResult is the outcome of the round trips.
type pingResult struct {
	rtts    []time.Duration // of the successful round trips, sorted
	ok      int
	err     error // the first failure
	elapsed time.Duration
}

// roundTrips does the COUNT round trips over CONCURRENCY goroutines. Each
// goroutine stops at its first failure.
func (o *pingOpts) roundTrips(link *neonet.NodeLink) pingResult {
	var (
		done     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	per := make([][]time.Duration, o.conc)
	stopProgress := startProgress(&done, o.count)
	start := time.Now()
	for i := range o.conc {
		n := o.count / o.conc
		if i < o.count%o.conc {
			n++
		}
		if n == 0 {
			continue
		}
		wg.Go(func() {
			rtts, err := o.worker(link, n, &done)
			per[i] = rtts
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res := pingResult{elapsed: time.Since(start), err: firstErr}
	stopProgress()
	for _, r := range per {
		res.rtts = append(res.rtts, r...)
	}
	slices.Sort(res.rtts)
	res.ok = len(res.rtts)
	return res
}

// worker does n round trips, in full mode on a conn of its own, and
// returns their RTTs; it stops at the first failure.
func (o *pingOpts) worker(link *neonet.NodeLink, n int, done *atomic.Int64) ([]time.Duration, error) {
	rtts := make([]time.Duration, 0, min(n, 1<<16))
	ask := link.Ask1
	if !o.light {
		c, err := link.NewConn()
		if err != nil {
			return rtts, err
		}
		defer c.Close()
		ask = c.Ask
	}
	var req, resp proto.Msg = &proto.Ping{}, &proto.Pong{}
	var ans *proto.AnswerObject
	if o.size.set {
		ans = new(proto.AnswerObject)
		req, resp = &proto.AskObject{OID: proto.Oid(o.size.v)}, ans
	}
	for range n {
		t0 := time.Now()
		err := ask(req, resp)
		rtt := time.Since(t0)
		if err == nil && ans != nil {
			err = o.checkObject(ans)
		}
		if err != nil {
			return rtts, err
		}
		rtts = append(rtts, rtt)
		done.Add(1)
	}
	return rtts, nil
}

// checkObject checks an AnswerObject against the test object asked for.
func (o *pingOpts) checkObject(a *proto.AnswerObject) error {
	switch {
	case uint64(a.OID) != o.size.v:
		return fmt.Errorf("bad AnswerObject: oid %v, want %v", a.OID, proto.Oid(o.size.v))
	case uint64(len(a.Data)) != o.wantLen:
		return fmt.Errorf("bad AnswerObject: %d bytes of data, want %d", len(a.Data), o.wantLen)
	case !bytes.Equal(a.Checksum, o.wantSum):
		return fmt.Errorf("bad AnswerObject: checksum %x, want %x", a.Checksum, o.wantSum)
	}
	if sum := sha1.Sum(a.Data); !bytes.Equal(sum[:], o.wantSum) {
		return errors.New("bad AnswerObject: data does not match the checksum")
	}
	return nil
}

// pingJSON is the -json output.
type pingJSON struct {
	Count  int     `json:"count"`
	Errors int     `json:"errors"`
	P50    float64 `json:"p50_us"`
	P90    float64 `json:"p90_us"`
	P99    float64 `json:"p99_us"`
	Max    float64 `json:"max_us"`
	RPS    float64 `json:"rps"`
}

// print writes the result as text or JSON.
func (o *pingOpts) print(w io.Writer, addr string, enc proto.Encoding, res pingResult) error {
	rps := 0.0
	if res.elapsed > 0 {
		rps = float64(res.ok) / res.elapsed.Seconds()
	}
	var maxRTT time.Duration
	if res.ok > 0 {
		maxRTT = res.rtts[res.ok-1]
	}
	if o.json {
		b, err := json.Marshal(pingJSON{
			Count:  o.count,
			Errors: o.count - res.ok,
			P50:    micros(percentile(res.rtts, 0.50)),
			P90:    micros(percentile(res.rtts, 0.90)),
			P99:    micros(percentile(res.rtts, 0.99)),
			Max:    micros(maxRTT),
			RPS:    round(rps, 10),
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var sb strings.Builder
	what := "Ping"
	if o.size.set {
		what = fmt.Sprintf("AskObject of %d bytes", o.wantLen)
	}
	mode := fmt.Sprintf("full mode, %d conns", o.conc)
	switch {
	case o.light:
		mode = fmt.Sprintf("light mode, %d concurrent", o.conc)
	case o.conc == 1:
		mode = "full mode, 1 conn"
	}
	fmt.Fprintf(&sb, "%s (%v, %s, %s): %d of %d round trips ok in %v\n",
		addr, enc, mode, what, res.ok, o.count, res.elapsed.Round(time.Millisecond))
	if res.ok > 0 {
		fmt.Fprintf(&sb, "rtt µs: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n",
			micros(percentile(res.rtts, 0.50)), micros(percentile(res.rtts, 0.90)),
			micros(percentile(res.rtts, 0.99)), micros(maxRTT))
		printHistogram(&sb, histogram(res.rtts, 10), 40)
	}
	fmt.Fprintf(&sb, "%.1f round trips/s, %d errors\n", rps, o.count-res.ok)
	_, err := io.WriteString(w, sb.String())
	return err
}

// startProgress draws a progress bar of done out of total on stderr, if it
// is a terminal, until the returned function is called.
func startProgress(done *atomic.Int64, total int) func() {
	fi, err := os.Stderr.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 || total == 0 {
		return func() {}
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			n := int(done.Load())
			const width = 40
			fill := n * width / total
			fmt.Fprintf(os.Stderr, "\r[%s%s] %3d%% %d/%d", strings.Repeat("#", fill),
				strings.Repeat(" ", width-fill), n*100/total, n, total)
			select {
			case <-quit:
				fmt.Fprint(os.Stderr, "\r\033[K")
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}
