package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Group is one benchmark family compared against a reference variant.
type Group struct {
	// Prefix selects the family's benchmarks, e.g. "RTT/".
	Prefix string
	// Base is the reference benchmark, e.g. "RTT/tcp-direct".
	Base string
	// Unit is the metric compared: ns/op for RTT, MB/s and rt/s otherwise.
	Unit string
	// HigherIsBetter is true for rates (MB/s, rt/s), false for times.
	HigherIsBetter bool
}

// The families with a reference.
var (
	GroupRTT             = Group{Prefix: "RTT/", Base: "RTT/tcp-direct", Unit: "ns/op"}
	GroupThroughput      = Group{Prefix: "Throughput1MiB/", Base: "Throughput1MiB/tcp", Unit: "MB/s", HigherIsBetter: true}
	GroupThroughput64KiB = Group{Prefix: "Throughput64KiB/", Base: "Throughput64KiB/tcp", Unit: "MB/s", HigherIsBetter: true}
	GroupParallel        = Group{Prefix: "Parallel64/", Base: "Parallel64/tcp-64conns", Unit: "rt/s", HigherIsBetter: true}
	GroupParallel4KiB    = Group{Prefix: "Parallel64_4KiB/", Base: "Parallel64_4KiB/tcp-64conns", Unit: "rt/s", HigherIsBetter: true}
)

// PrefixIdleLinks selects the BenchmarkIdleLinks variants.
const PrefixIdleLinks = "IdleLinks/"

// Groups lists the families with a reference, in report order.
var Groups = []Group{GroupRTT, GroupThroughput, GroupThroughput64KiB, GroupParallel, GroupParallel4KiB}

// Members returns the group's benchmarks in res, in input order.
func (g Group) Members(res *Results) []string { return members(res, g.Prefix) }

// members returns the benchmarks of res whose names start with prefix, in
// input order.
func members(res *Results, prefix string) []string {
	var names []string
	for _, n := range res.Order {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	return names
}

// Ratio returns the ratio of name to the group's Base in the group's unit
// (see RatioTo): for RTT a time ratio (1.10 = 10% slower than the
// reference), for rates a rate ratio (0.90 = 10% less throughput).
func (g Group) Ratio(res *Results, name string) (float64, bool) { return g.RatioTo(res, name, g.Base) }

// RatioTo returns the ratio of benchmark name to benchmark base in the
// group's unit. When both ran the same number of times — bench/run.sh runs
// each benchmark once per pass, so run i of each is from pass i, seconds
// apart — it is the median of the per-run ratios, which a drift of the
// machine's load between passes does not skew; otherwise it is the ratio of
// the medians. ok is false if either has no runs or a base value is zero.
func (g Group) RatioTo(res *Results, name, base string) (float64, bool) {
	vs, bs := res.Values(name, g.Unit), res.Values(base, g.Unit)
	if len(vs) == 0 || len(bs) == 0 || slices.Contains(bs, 0) {
		return 0, false
	}
	if len(vs) == len(bs) {
		rs := make([]float64, len(vs))
		for i := range vs {
			rs[i] = vs[i] / bs[i]
		}
		return median(rs)
	}
	v, _ := median(vs)
	b, _ := median(bs)
	return v / b, true
}

// RTTReference returns the RTT variant that a NodeLink variant is held
// against: the TCP server of the same shape. A serial Ask, however its
// server is written, against the TCP ping-pong (tcp-direct); a server that
// hands each request to another goroutine (ask1-go, connperreq) against TCP
// with that hop (tcp-serverecv); 4 KiB answers against TCP carrying the same
// bytes (tcp-direct-4KiB). Other variants get tcp-direct.
func RTTReference(variant string) string {
	switch {
	case !strings.HasPrefix(variant, "link-"):
		return "tcp-direct"
	case strings.HasSuffix(variant, "-4KiB"):
		return "tcp-direct-4KiB"
	case strings.HasSuffix(variant, "-ask1-go"), strings.HasSuffix(variant, "-connperreq"):
		return "tcp-serverecv"
	}
	return "tcp-direct"
}

// Status is the outcome of a target.
type Status int

// Target outcomes.
const (
	NoData Status = iota // a benchmark the target needs is missing
	Met
	NotMet
)

// String returns "met", "not met" or "no data".
func (s Status) String() string {
	switch s {
	case Met:
		return "met"
	case NotMet:
		return "not met"
	}
	return "no data"
}

// Target is one performance goal of neolink.
type Target struct {
	// Desc states the goal.
	Desc string
	// Eval measures it in res: a description of the measurement and the status.
	Eval func(res *Results) (measured string, st Status)
}

// ratioTarget is "variant's ratio to the group's base is at most (or, for
// rates, at least) limit".
func ratioTarget(g Group, variant string, limit float64) Target {
	return ratioToTarget(g, variant, strings.TrimPrefix(g.Base, g.Prefix), limit)
}

// ratioToTarget is ratioTarget against the group's variant base.
func ratioToTarget(g Group, variant, base string, limit float64) Target {
	name, baseName := g.Prefix+variant, g.Prefix+base
	cmp := "≤"
	if g.HigherIsBetter {
		cmp = "≥"
	}
	return Target{
		Desc: fmt.Sprintf("%s %s %s %.2f× %s (%s)", strings.TrimSuffix(g.Prefix, "/"), variant, cmp, limit, base, g.Unit),
		Eval: func(res *Results) (string, Status) {
			r, ok := g.RatioTo(res, name, baseName)
			if !ok {
				return "—", NoData
			}
			met := r <= limit
			if g.HigherIsBetter {
				met = r >= limit
			}
			return fmt.Sprintf("%.3f×", r), status(met)
		},
	}
}

func status(met bool) Status {
	if met {
		return Met
	}
	return NotMet
}

// handsOff reports whether a link variant hands each request to a goroutine
// started for it (ask1-go, connperreq): it allocates that goroutine's start
// as a TCP server doing the same does, so it is held to tcp-goperreq's
// allocations instead of to zero.
func handsOff(variant string) bool {
	return strings.HasSuffix(variant, "-ask1-go") || strings.HasSuffix(variant, "-connperreq")
}

// zeroAllocTarget is "every NodeLink variant of RTT, throughput and parallel
// makes 0 allocs/op in every run", except those of handsOff.
func zeroAllocTarget() Target {
	return Target{
		Desc: "0 allocs/op for every link-* variant of RTT, Throughput and Parallel64 but ask1-go and connperreq (every run)",
		Eval: func(res *Results) (string, Status) {
			var names, bad []string
			for _, g := range Groups {
				for _, n := range g.Members(res) {
					v := strings.TrimPrefix(n, g.Prefix)
					if !strings.HasPrefix(v, "link-") || handsOff(v) {
						continue
					}
					allocs := res.Values(n, "allocs/op")
					if len(allocs) == 0 {
						continue
					}
					names = append(names, n)
					if worst := slices.Max(allocs); worst != 0 {
						bad = append(bad, fmt.Sprintf("%s %g", n, worst))
					}
				}
			}
			switch {
			case len(names) == 0:
				return "—", NoData
			case len(bad) > 0:
				return strings.Join(bad, ", "), NotMet
			}
			return fmt.Sprintf("0 in all %d variants", len(names)), Met
		},
	}
}

// handOffAllocTarget is "the RTT variants of handsOff allocate no more per
// op (median) than tcp-goperreq".
func handOffAllocTarget() Target {
	const ref = "RTT/tcp-goperreq"
	return Target{
		Desc: "RTT link-*-ask1-go and link-*-connperreq allocs/op ≤ tcp-goperreq",
		Eval: func(res *Results) (string, Status) {
			limit, ok := res.Median(ref, "allocs/op")
			if !ok {
				return "—", NoData
			}
			var cells []string
			met := true
			for _, n := range GroupRTT.Members(res) {
				v := strings.TrimPrefix(n, GroupRTT.Prefix)
				a, ok := res.Median(n, "allocs/op")
				if !ok || !strings.HasPrefix(v, "link-") || !handsOff(v) {
					continue
				}
				cells = append(cells, fmt.Sprintf("%s %s", v, num(a)))
				met = met && a <= limit
			}
			if len(cells) == 0 {
				return "—", NoData
			}
			return fmt.Sprintf("%s (tcp-goperreq %s)", strings.Join(cells, ", "), num(limit)), status(met)
		},
	}
}

// idleTarget is "IdleLinks/variant reports at most limit of unit on the
// accepting side and of dialer-unit on the dialing side".
func idleTarget(variant, what, unit string, limit float64, format func(float64) string) Target {
	name := PrefixIdleLinks + variant
	return Target{
		Desc: fmt.Sprintf("IdleLinks %s: %s ≤ %s per idle link, each side (%s)", variant, what, format(limit), unit),
		Eval: func(res *Results) (string, Status) {
			acc, ok1 := res.Median(name, unit)
			dial, ok2 := res.Median(name, "dialer-"+unit)
			if !ok1 || !ok2 {
				return "—", NoData
			}
			return fmt.Sprintf("%s accepting, %s dialing", format(acc), format(dial)), status(acc <= limit && dial <= limit)
		},
	}
}

// Targets are neolink's performance goals, in report order.
var Targets = []Target{
	ratioTarget(GroupRTT, "link-N-ask", 1.05),
	ratioTarget(GroupRTT, "link-M-ask", 1.05),
	ratioTarget(GroupRTT, "link-N-ask1", 1.25),
	ratioTarget(GroupRTT, "link-N-ask-acceptloop", 1.15),
	ratioTarget(GroupRTT, "link-M-ask-acceptloop", 1.15),
	ratioToTarget(GroupRTT, "link-N-ask1-go", "tcp-serverecv", 1.05),
	ratioToTarget(GroupRTT, "link-M-ask1-go", "tcp-serverecv", 1.05),
	ratioToTarget(GroupRTT, "link-N-connperreq", "tcp-serverecv", 1.05),
	ratioToTarget(GroupRTT, "link-M-connperreq", "tcp-serverecv", 1.05),
	ratioToTarget(GroupRTT, "link-N-ask-4KiB", "tcp-direct-4KiB", 1.10),
	ratioToTarget(GroupRTT, "link-M-ask-4KiB", "tcp-direct-4KiB", 1.10),
	zeroAllocTarget(),
	handOffAllocTarget(),
	ratioTarget(GroupThroughput, "link-N", 0.90),
	ratioTarget(GroupThroughput, "link-M", 0.85),
	ratioTarget(GroupThroughput64KiB, "link-N", 0.85),
	ratioTarget(GroupThroughput64KiB, "link-M", 0.85),
	ratioTarget(GroupParallel, "link-N", 1.30),
	ratioTarget(GroupParallel4KiB, "link-N", 1.30),
	idleTarget("link-N", "heap", "B/link", 8192, formatBytes),
	idleTarget("link-N", "goroutines", "goroutines/link", 0.01, sig3), // 0, but for a stray process-wide goroutine
}

// formatBytes formats a byte count: "950 B", "23.4 KiB", "1.50 MiB".
func formatBytes(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1<<20:
		return sig3(v/(1<<20)) + " MiB"
	case a >= 1<<10:
		return sig3(v/(1<<10)) + " KiB"
	}
	return sig3(v) + " B"
}

// formatNs formats a duration given in nanoseconds with three significant
// digits: "950 ns", "14.3 µs", "1.25 ms".
func formatNs(ns float64) string {
	switch a := math.Abs(ns); {
	case a >= 1e9:
		return sig3(ns/1e9) + " s"
	case a >= 1e6:
		return sig3(ns/1e6) + " ms"
	case a >= 1e3:
		return sig3(ns/1e3) + " µs"
	}
	return sig3(ns) + " ns"
}

// sig3 formats v with three significant digits, or as an integer from 100 up.
func sig3(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// formatRate formats a rate with thousands kept readable: "3340", "123 k".
func formatRate(v float64) string {
	if math.Abs(v) >= 1e6 {
		return sig3(v/1e6) + " M"
	}
	if math.Abs(v) >= 1e4 {
		return sig3(v/1e3) + " k"
	}
	return sig3(v)
}

// num formats a count: exact integers in full ("0", "5762"), others with
// three significant digits.
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return sig3(v)
}
