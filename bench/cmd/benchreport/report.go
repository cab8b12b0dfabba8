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

// The three families with a reference.
var (
	GroupRTT        = Group{Prefix: "RTT/", Base: "RTT/tcp-direct", Unit: "ns/op"}
	GroupThroughput = Group{Prefix: "Throughput1MiB/", Base: "Throughput1MiB/tcp", Unit: "MB/s", HigherIsBetter: true}
	GroupParallel   = Group{Prefix: "Parallel64/", Base: "Parallel64/tcp-64conns", Unit: "rt/s", HigherIsBetter: true}
)

// Members returns the group's benchmarks in res, in input order.
func (g Group) Members(res *Results) []string {
	var names []string
	for _, n := range res.Order {
		if strings.HasPrefix(n, g.Prefix) {
			names = append(names, n)
		}
	}
	return names
}

// Ratio returns median(name)/median(Base) of the group's unit: for RTT a
// time ratio (1.10 = 10% slower than the reference), for rates a rate ratio
// (0.90 = 10% less throughput). ok is false if either median is missing or
// the base is zero.
func (g Group) Ratio(res *Results, name string) (float64, bool) {
	v, ok1 := res.Median(name, g.Unit)
	base, ok2 := res.Median(g.Base, g.Unit)
	if !ok1 || !ok2 || base == 0 {
		return 0, false
	}
	return v / base, true
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

// ratioTarget is "name's ratio to the group's base is at most (or, for rates,
// at least) limit".
func ratioTarget(g Group, variant string, limit float64) Target {
	name := g.Prefix + variant
	base := strings.TrimPrefix(g.Base, g.Prefix)
	cmp, what := "≤", g.Unit
	if g.HigherIsBetter {
		cmp = "≥"
	}
	return Target{
		Desc: fmt.Sprintf("%s %s %s %.2f× %s (%s)", strings.TrimSuffix(g.Prefix, "/"), variant, cmp, limit, base, what),
		Eval: func(res *Results) (string, Status) {
			r, ok := g.Ratio(res, name)
			if !ok {
				return "—", NoData
			}
			met := r <= limit
			if g.HigherIsBetter {
				met = r >= limit
			}
			m := fmt.Sprintf("%.3f×", r)
			if met {
				return m, Met
			}
			return m, NotMet
		},
	}
}

// zeroAllocTarget is "every RTT/link-*-ask* variant makes 0 allocs/op in
// every run".
func zeroAllocTarget() Target {
	return Target{
		Desc: "0 allocs/op for RTT link-*-ask* (every run)",
		Eval: func(res *Results) (string, Status) {
			var names, bad []string
			for _, n := range GroupRTT.Members(res) {
				v := strings.TrimPrefix(n, GroupRTT.Prefix)
				if !strings.HasPrefix(v, "link-") || !strings.Contains(v, "-ask") {
					continue
				}
				allocs := res.Values(n, "allocs/op")
				if len(allocs) == 0 {
					continue
				}
				names = append(names, v)
				if worst := slices.Max(allocs); worst != 0 {
					bad = append(bad, fmt.Sprintf("%s %g", v, worst))
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

// Targets are neolink's performance goals, in report order.
var Targets = []Target{
	ratioTarget(GroupRTT, "link-N-ask", 1.10),
	ratioTarget(GroupRTT, "link-N-ask1", 1.25),
	zeroAllocTarget(),
	ratioTarget(GroupThroughput, "link-N", 0.90),
	ratioTarget(GroupParallel, "link-N", 1.0),
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
