package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// benchCommand is "neolink bench": NodeLink RTT against plain TCP.
func benchCommand() *command {
	return &command{
		name:    "bench",
		summary: "compare NodeLink round trips with plain TCP over loopback",
		about: `Bench measures, in this process over 127.0.0.1, the round-trip time of:

    tcp      a 32-byte ping-pong on a plain TCP connection (the floor)
    ask/N    NodeLink Ask on one conn (full mode), N encoding
    ask/M    the same, M encoding
    ask1/N   NodeLink Ask1, a fresh id per request (light mode), N encoding
    ask1/M   the same, M encoding

The link variants ask AskObject and get an AnswerObject with 32 bytes of
data; replies are checked. It prints progress on stderr, then a table of
mean RTT, ratio to plain TCP and heap allocations per round trip (both
ends). -quick takes a few seconds, the default about a minute.`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			quick := fs.Bool("quick", false, "short measurement (a few seconds in all)")
			asJSON := fs.Bool("json", false, "print a JSON array of rows on stdout instead of a table")
			return func(args []string) error {
				if len(args) != 0 {
					return usagef("unexpected argument %q", args[0])
				}
				plan := benchPlan{warmup: 500 * time.Millisecond, round: 2 * time.Second, rounds: 5}
				if *quick {
					plan = benchPlan{warmup: 100 * time.Millisecond, round: 200 * time.Millisecond, rounds: 3}
				}
				rows, err := plan.runAll(os.Stderr)
				if err != nil {
					return err
				}
				if *asJSON {
					return printBenchJSON(os.Stdout, rows)
				}
				return printBenchTable(os.Stdout, rows)
			}
		},
	}
}

// benchPlan says how long to measure each variant: a warm-up, then rounds
// of which the median is kept.
type benchPlan struct {
	warmup, round time.Duration
	rounds        int
}

// benchRow is one variant's result.
type benchRow struct {
	Variant     string  `json:"variant"`
	RTTMicros   float64 `json:"rtt_us"`
	Ratio       float64 `json:"ratio"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	Ops         int64   `json:"ops"`
}

// benchVariant sets up one variant: it returns one round trip and the
// function that tears the setup down.
type benchVariant struct {
	name  string
	setup func() (op func() error, teardown func(), err error)
}

// benchVariants returns the variants in table order; tcp comes first.
func benchVariants() []benchVariant {
	vs := []benchVariant{{"tcp", setupTCP}}
	for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
		vs = append(vs, benchVariant{"ask/" + enc.String(), func() (func() error, func(), error) { return setupLink(enc, false) }})
	}
	for _, enc := range []proto.Encoding{proto.EncodingN, proto.EncodingM} {
		vs = append(vs, benchVariant{"ask1/" + enc.String(), func() (func() error, func(), error) { return setupLink(enc, true) }})
	}
	return vs
}

// runAll measures every variant, printing progress on progress.
func (p benchPlan) runAll(progress io.Writer) ([]benchRow, error) {
	var rows []benchRow
	for _, v := range benchVariants() {
		fmt.Fprintf(progress, "bench: %-7s ", v.name)
		row, err := p.measure(v)
		if err != nil {
			fmt.Fprintln(progress, "failed")
			return nil, fmt.Errorf("%s: %w", v.name, err)
		}
		row.Ratio = 1
		if len(rows) > 0 && rows[0].RTTMicros > 0 {
			row.Ratio = round(row.RTTMicros/rows[0].RTTMicros, 1000)
		}
		fmt.Fprintf(progress, "%8.2f µs/op %6.1f allocs/op (%d round trips)\n", row.RTTMicros, row.AllocsPerOp, row.Ops)
		rows = append(rows, row)
	}
	return rows, nil
}

// measure runs one variant: warm-up, then p.rounds timed rounds. It
// reports the round with the median RTT.
func (p benchPlan) measure(v benchVariant) (benchRow, error) {
	op, teardown, err := v.setup()
	if err != nil {
		return benchRow{}, err
	}
	defer teardown()
	if _, err := timedLoop(op, p.warmup); err != nil {
		return benchRow{}, err
	}
	type result struct {
		rtt    time.Duration
		allocs float64
		ops    int64
	}
	rounds := make([]result, 0, p.rounds)
	var total int64
	for range p.rounds {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		start := time.Now()
		n, err := timedLoop(op, p.round)
		elapsed := time.Since(start)
		runtime.ReadMemStats(&m1)
		if err != nil {
			return benchRow{}, err
		}
		rounds = append(rounds, result{
			rtt:    elapsed / time.Duration(n),
			allocs: float64(m1.Mallocs-m0.Mallocs) / float64(n),
			ops:    n,
		})
		total += n
	}
	slices.SortFunc(rounds, func(a, b result) int { return int(a.rtt - b.rtt) })
	med := rounds[len(rounds)/2]
	return benchRow{
		Variant:     v.name,
		RTTMicros:   round(float64(med.rtt.Nanoseconds())/1e3, 1000),
		AllocsPerOp: round(med.allocs, 100),
		Ops:         total,
	}, nil
}

// round rounds x to the nearest multiple of 1/scale.
func round(x, scale float64) float64 { return math.Round(x*scale) / scale }

// timedLoop calls op until d has passed (at least once) and returns how
// many times it ran.
func timedLoop(op func() error, d time.Duration) (int64, error) {
	deadline := time.Now().Add(d)
	var n int64
	for {
		for range 16 {
			if err := op(); err != nil {
				return n, err
			}
			n++
		}
		if !time.Now().Before(deadline) {
			return n, nil
		}
	}
}

// setupTCP makes the plain TCP variant: the server reads 32 bytes and
// writes them back, in one goroutine.
func setupTCP() (func() error, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	server, ok := <-accepted
	if !ok {
		client.Close()
		return nil, nil, errors.New("accept failed")
	}
	go func() {
		buf := make([]byte, 32)
		for {
			if _, err := io.ReadFull(server, buf); err != nil {
				return
			}
			if _, err := server.Write(buf); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32)
	op := func() error {
		if _, err := client.Write(buf); err != nil {
			return err
		}
		_, err := io.ReadFull(client, buf)
		return err
	}
	return op, func() { client.Close(); server.Close() }, nil
}

// setupLink makes a NodeLink variant: Ask on one conn (server: Expect and
// Send), or with light Ask1 (server: Recv1, Reply, Close).
func setupLink(enc proto.Encoding, light bool) (func() error, func(), error) {
	ll, err := neonet.ListenLink("tcp", "127.0.0.1:0", nil)
	if err != nil {
		return nil, nil, err
	}
	defer ll.Close()
	cfg := neonet.DefaultConfig()
	cfg.Encoding = enc
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := neonet.DialLink(ctx, "tcp", ll.Addr().String(), cfg)
	if err != nil {
		return nil, nil, err
	}
	server, err := ll.AcceptContext(ctx)
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	teardown := func() { client.Close(); server.Close() }
	if light {
		go serveBenchLight(server)
	} else {
		go serveBenchFull(server)
	}
	req := &proto.AskObject{}
	var resp proto.AnswerObject
	check := func() error {
		if resp.OID != req.OID || len(resp.Data) != 32 {
			return fmt.Errorf("bad answer: oid %v with %d bytes, want oid %v with 32", resp.OID, len(resp.Data), req.OID)
		}
		req.OID++
		return nil
	}
	if light {
		return func() error {
			if err := client.Ask1(req, &resp); err != nil {
				return err
			}
			return check()
		}, teardown, nil
	}
	c, err := client.NewConn()
	if err != nil {
		teardown()
		return nil, nil, err
	}
	return func() error {
		if err := c.Ask(req, &resp); err != nil {
			return err
		}
		return check()
	}, teardown, nil
}

// benchAnswer returns the AnswerObject the bench servers send.
func benchAnswer() *proto.AnswerObject {
	return &proto.AnswerObject{Serial: 1, Compression: proto.Some(int64(0)), Checksum: make([]byte, 20), Data: make([]byte, 32)}
}

// serveBenchFull answers AskObject on the first conn the peer opens.
func serveBenchFull(link *neonet.NodeLink) {
	c, err := link.Accept()
	if err != nil {
		return
	}
	var req proto.AskObject
	ans := benchAnswer()
	for {
		if _, err := c.Expect(&req); err != nil {
			return
		}
		ans.OID = req.OID
		if err := c.Send(ans); err != nil {
			return
		}
	}
}

// serveBenchLight answers light AskObject requests.
func serveBenchLight(link *neonet.NodeLink) {
	ans := benchAnswer()
	for {
		req, err := link.Recv1()
		if err != nil {
			return
		}
		if m, ok := req.Msg.(*proto.AskObject); ok {
			ans.OID = m.OID
			req.Reply(ans)
		} else {
			req.Reply(proto.ProtocolError("unexpected packet " + proto.Name(req.Msg)))
		}
		req.Close()
	}
}

// printBenchTable writes rows as an aligned table.
func printBenchTable(w io.Writer, rows []benchRow) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %9s %7s %10s\n", "variant", "RTT µs", "vs TCP", "allocs/op")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-8s %8.2f %6.2fx %10.1f\n", r.Variant, r.RTTMicros, r.Ratio, r.AllocsPerOp)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// printBenchJSON writes rows as one JSON array.
func printBenchJSON(w io.Writer, rows []benchRow) error {
	b, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
