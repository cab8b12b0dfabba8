package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Machine describes where the benchmarks ran.
type Machine struct {
	CPU   string // model name
	Cores int    // logical CPUs
	Procs int    // GOMAXPROCS of the runs
	Go    string // toolchain version and platform
	Date  string // YYYY-MM-DD
}

// Options is what the report shows besides the results.
type Options struct {
	// Machine is shown in the report's first table.
	Machine Machine
	// SVG is the link to the RTT chart relative to the report; "" for none.
	SVG string
	// Benchstat is benchstat's output on the same input.
	Benchstat string
	// BenchstatNote is shown instead when Benchstat is empty: why it is.
	BenchstatNote string
	// Inputs names the raw output files the report was made from.
	Inputs []string
	// Brief leaves out the hand-written section, the variant notes and the
	// benchstat section.
	Brief bool
	// HandWritten is the hand-written section to keep (see HandWritten);
	// "" for DefaultHandWritten.
	HandWritten string
}

const variantNotes = `One op of **RTT** is one request/reply round trip over 127.0.0.1, the reply
checked (stamp, length, content). Requests and answers are 32 bytes, except in the *-4KiB variants:

- ` + "`tcp-direct`" + `: plain TCP ping-pong, the server reading and writing in one goroutine: the floor.
- ` + "`tcp-serverecv`" + `: plain TCP, the server's reader goroutine handing each request over a channel to a writer goroutine.
- ` + "`tcp-goperreq`" + `: plain TCP, the server's reader goroutine starting a goroutine per request that writes the reply.
- ` + "`pipe-direct`" + `: the same ping-pong over net.Pipe (no kernel).
- ` + "`link-N-ask`, `link-M-ask`" + `: NodeLink over TCP, ` + "`Conn.Ask`" + ` on one open Conn that the server accepted and
  serves inline, framing N / M; request ` + "`AskObject{OID}`" + `, answer ` + "`AnswerObject{OID, Serial, Data: 32 bytes}`" + `.
- ` + "`link-*-ask1`" + `: lightweight mode, ` + "`Ask1`" + ` ↔ ` + "`Recv1` + `Reply` + `Close`" + ` inline in the server's Recv1 loop.
- ` + "`link-N-pipe-ask`" + `: NodeLink over net.Pipe.
- ` + "`link-*-ask-acceptloop`" + `: serial ` + "`Conn.Ask`" + ` on one Conn; the server keeps an Accept loop running and serves each
  Conn in a goroutine of its own, as a storage node does. Held to tcp-direct.
- ` + "`link-*-ask1-go`" + `: ` + "`Ask1`" + `; the server's Recv1 loop runs ` + "`go handle(req)`" + `, which replies and closes. Held to tcp-serverecv.
- ` + "`link-*-connperreq`" + `: the client opens a Conn per request (` + "`NewConn`, `Ask`, `Close`" + `); the server's Accept loop starts a
  goroutine per Conn that answers once and closes it. Held to tcp-serverecv.
- ` + "`tcp-direct-4KiB`, `link-*-ask-4KiB`" + `: ` + "`tcp-direct`" + ` and ` + "`link-*-ask`" + ` with 4 KiB of answer Data; the TCP variant writes exactly
  the bytes of NodeLink's N-framed request and answer packets.
- ` + "`yamux-stream`, `smux-stream`" + `: one long-lived stream; ` + "`*-per-req`" + `: a new stream per request, closed after the reply.

**Throughput1MiB** and **Throughput64KiB** send messages of that size one way, back to back, until the
receiver has checked the last (NodeLink: the notification ` + "`AddObject`" + ` with the message as Data, on one
Conn, then an Ask the receiver answers after the last). **Parallel64** runs round trips from 64 goroutines,
each on its own stream (` + "`tcp-64conns`" + `: 64 TCP connections; NodeLink: 64 Conns of one link, served by an
Accept loop with a goroutine per Conn), b.N split between them; **Parallel64_4KiB** is the same with 4 KiB
answers (the stream variants carry NodeLink's packet sizes). **IdleLinks** opens 10,000 link pairs over
loopback, the dialing ends in a second process, makes one round trip on each and measures both processes
once the links have been idle for 250 ms: live heap after a GC and goroutines, per link end. yamux and smux
use their default configurations.`

// Markers of the hand-written section that benchreport keeps from the
// previous report when it regenerates it.
const (
	handBegin = "<!-- begin hand-written: benchreport keeps this section as it is -->"
	handEnd   = "<!-- end hand-written -->"
)

// DefaultHandWritten is the hand-written section of a new report: a pointer
// to the Python figures, which another document holds.
const DefaultHandWritten = handBegin + `
## Python

Figures for the Python side (the peer library in ` + "`interop/py/`" + ` and NEO/py talking to neolink) are in
[python.md](python.md); they are measured by hand, not by ` + "`make bench`" + `.
` + handEnd

// HandWritten returns the hand-written section of a previous report
// (markers included), or "" if it has none.
func HandWritten(report string) string {
	i := strings.Index(report, handBegin)
	if i < 0 {
		return ""
	}
	j := strings.Index(report[i:], handEnd)
	if j < 0 {
		return ""
	}
	return report[i : i+j+len(handEnd)]
}

// WriteMarkdown writes the report of res.
func WriteMarkdown(w io.Writer, res *Results, opt Options) error {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("# neolink benchmarks\n\n")
	p("Generated by `bench/run.sh` (`bench/cmd/benchreport`) from `go test -bench` output")
	if len(opt.Inputs) > 0 {
		p(" (%s)", strings.Join(quoteAll(opt.Inputs), ", "))
	}
	p("; do not edit by hand, except the section between the hand-written markers, which is kept. " +
		"Values are medians over the runs; the machine is shared and noisy, so compare ratios rather than absolute numbers. " +
		"Every ratio is computed within the same run.\n\n")

	m := opt.Machine
	p("| Machine | |\n|---|---|\n")
	p("| CPU | %s |\n", orDash(m.CPU))
	p("| Cores | %d (GOMAXPROCS %d) |\n", m.Cores, m.Procs)
	p("| Go | %s |\n", orDash(m.Go))
	p("| Date | %s |\n", orDash(m.Date))
	p("| Runs per benchmark | %s |\n\n", runsSummary(res))

	if len(res.Failed) > 0 {
		p("**Failed benchmarks:** %s\n\n", strings.Join(quoteAll(res.Failed), ", "))
	}

	p("## Targets\n\n| Target | Measured | Status |\n|---|---|---|\n")
	for _, t := range Targets {
		measured, st := t.Eval(res)
		p("| %s | %s | %s |\n", t.Desc, measured, statusCell(st))
	}
	p("\nRatios compare time per round trip for RTT, MB/s and round trips/s for the others. Each is the median of " +
		"the per-pass ratios (every pass runs a variant and its reference seconds apart), so that a change of the " +
		"machine's load between passes does not skew it; the tables' medians are over all runs.\n\n")

	if rows := GroupRTT.Members(res); len(rows) > 0 {
		p("## Round trip (BenchmarkRTT)\n\n")
		if opt.SVG != "" {
			p("![Median round trip per variant](%s)\n\n", opt.SVG)
		}
		p("\"× reference\" is the ratio to the TCP server a NodeLink variant is held to in the targets, where that is not tcp-direct.\n\n")
		p("| Variant | Median | × tcp-direct | × reference | Range | B/op | allocs/op | Runs |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, n := range rows {
			p("| %s | %s | %s | %s | %s | %s | %s | %d |\n", short(GroupRTT, n),
				med(res, n, "ns/op", formatNs), ratio(GroupRTT, res, n), refRatio(res, n), rangeNs(res.Values(n, "ns/op")),
				med(res, n, "B/op", num), med(res, n, "allocs/op", num), res.Runs(n, "ns/op"))
		}
		p("\n")
	}

	for _, t := range []struct {
		g     Group
		title string
	}{
		{GroupThroughput, "Throughput, 1 MiB messages (BenchmarkThroughput1MiB)"},
		{GroupThroughput64KiB, "Throughput, 64 KiB messages (BenchmarkThroughput64KiB)"},
	} {
		rows := t.g.Members(res)
		if len(rows) == 0 {
			continue
		}
		p("## %s\n\n", t.title)
		p("| Variant | MB/s | × tcp | Time per message | B/op | allocs/op | Runs |\n|---|--:|--:|--:|--:|--:|--:|\n")
		for _, n := range rows {
			p("| %s | %s | %s | %s | %s | %s | %d |\n", short(t.g, n),
				med(res, n, "MB/s", formatRate), ratio(t.g, res, n),
				med(res, n, "ns/op", formatNs), med(res, n, "B/op", num),
				med(res, n, "allocs/op", num), res.Runs(n, "MB/s"))
		}
		p("\n")
	}

	for _, t := range []struct {
		g     Group
		title string
	}{
		{GroupParallel, "64 concurrent streams, 32-byte answers (BenchmarkParallel64)"},
		{GroupParallel4KiB, "64 concurrent streams, 4 KiB answers (BenchmarkParallel64_4KiB)"},
	} {
		rows := t.g.Members(res)
		if len(rows) == 0 {
			continue
		}
		p("## %s\n\n", t.title)
		p("| Variant | Round trips/s | × tcp-64conns | p50 RTT µs | p99 RTT µs | B/op | allocs/op | Runs |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, n := range rows {
			p("| %s | %s | %s | %s | %s | %s | %s | %d |\n", short(t.g, n),
				med(res, n, "rt/s", formatRate), ratio(t.g, res, n),
				med(res, n, "p50-us", sig3), med(res, n, "p99-us", sig3),
				med(res, n, "B/op", num), med(res, n, "allocs/op", num), res.Runs(n, "rt/s"))
		}
		p("\n")
	}

	if rows := members(res, PrefixIdleLinks); len(rows) > 0 {
		p("## Idle links (BenchmarkIdleLinks)\n\n")
		p("10,000 link pairs over loopback, one round trip on each, then idle; per link end, live heap after a GC " +
			"and goroutines, in the accepting process and in the dialing one. `tcp` is the bare connection: " +
			"what the socket alone costs the Go heap.\n\n")
		p("| Variant | Heap per link, accepting | Heap per link, dialing | Goroutines per link, accepting | Goroutines per link, dialing | Time to open 10,000 | Runs |\n|---|--:|--:|--:|--:|--:|--:|\n")
		for _, n := range rows {
			p("| %s | %s | %s | %s | %s | %s | %d |\n", "`"+strings.TrimPrefix(n, PrefixIdleLinks)+"`",
				med(res, n, "B/link", formatBytes), med(res, n, "dialer-B/link", formatBytes),
				med(res, n, "goroutines/link", sig3), med(res, n, "dialer-goroutines/link", sig3),
				med(res, n, "ns/op", formatNs), res.Runs(n, "B/link"))
		}
		p("\n")
	}

	if res.Benches["IdleConnMemory"] != nil {
		n := "IdleConnMemory"
		p("## Idle Conn memory (BenchmarkIdleConnMemory)\n\n")
		p("10,000 Conns opened on one link (one op opens all of them); live heap per Conn after a GC.\n\n")
		p("| B/conn | Time to open 10,000 | allocs per 10,000 | Runs |\n|--:|--:|--:|--:|\n")
		p("| %s | %s | %s | %d |\n", med(res, n, "B/conn", sig3), med(res, n, "ns/op", formatNs),
			med(res, n, "allocs/op", num), res.Runs(n, "B/conn"))
		p("\n")
	}

	if others := otherBenches(res); len(others) > 0 {
		p("## Other benchmarks\n\n| Benchmark | Medians | Runs |\n|---|---|--:|\n")
		for _, n := range others {
			units := keysSorted(res.Benches[n].Metrics)
			var cells []string
			for _, u := range units {
				v, _ := res.Median(n, u)
				cells = append(cells, sig3(v)+" "+u)
			}
			p("| %s | %s | %d |\n", n, strings.Join(cells, ", "), res.Runs(n, "ns/op"))
		}
		p("\n")
	}

	if !opt.Brief {
		hand := opt.HandWritten
		if hand == "" {
			hand = DefaultHandWritten
		}
		p("%s\n\n", hand)
		p("## Variants\n\n%s\n\n", variantNotes)
		p("## benchstat\n\n")
		if opt.Benchstat != "" {
			p("```text\n%s\n```\n", strings.TrimRight(opt.Benchstat, "\n"))
		} else {
			p("%s\n", orDash(opt.BenchstatNote))
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func quoteAll(ss []string) []string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "`" + s + "`"
	}
	return q
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func statusCell(st Status) string {
	switch st {
	case Met:
		return "✅ met"
	case NotMet:
		return "❌ not met"
	}
	return "— no data"
}

// runsSummary is "6" when every benchmark ran the same number of times,
// else "3–6".
func runsSummary(res *Results) string { return runsSummaryOf(res, res.Order) }

// runsSummaryOf is runsSummary over the benchmarks names.
func runsSummaryOf(res *Results, names []string) string {
	var counts []int
	for _, n := range names {
		if c := res.Runs(n, "ns/op"); c > 0 {
			counts = append(counts, c)
		}
	}
	if len(counts) == 0 {
		return "0"
	}
	lo, hi := slices.Min(counts), slices.Max(counts)
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

func short(g Group, name string) string { return "`" + strings.TrimPrefix(name, g.Prefix) + "`" }

func med(res *Results, name, unit string, format func(float64) string) string {
	v, ok := res.Median(name, unit)
	if !ok {
		return "—"
	}
	return format(v)
}

func ratio(g Group, res *Results, name string) string {
	r, ok := g.Ratio(res, name)
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.2f×", r)
}

// refRatio is the RTT ratio of name to its RTTReference when that is not
// tcp-direct, e.g. "1.02× tcp-serverecv"; else "".
func refRatio(res *Results, name string) string {
	ref := RTTReference(strings.TrimPrefix(name, GroupRTT.Prefix))
	if ref == "tcp-direct" {
		return ""
	}
	r, ok := GroupRTT.RatioTo(res, name, GroupRTT.Prefix+ref)
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.2f× %s", r, ref)
}

// rangeNs is "min–max" of times in ns, or "—".
func rangeNs(vs []float64) string {
	if len(vs) == 0 {
		return "—"
	}
	return formatNs(slices.Min(vs)) + "–" + formatNs(slices.Max(vs))
}

// otherBenches lists the benchmarks that no section of the report covers.
func otherBenches(res *Results) []string {
	var out []string
	for _, n := range res.Order {
		covered := n == "IdleConnMemory" || strings.HasPrefix(n, PrefixIdleLinks)
		for _, g := range Groups {
			covered = covered || strings.HasPrefix(n, g.Prefix)
		}
		if !covered {
			out = append(out, n)
		}
	}
	return out
}

func keysSorted[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
