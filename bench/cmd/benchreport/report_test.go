package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sample is go test -bench output of two -count runs with custom metrics,
// log noise and a failure.
const sample = `goos: linux
goarch: amd64
pkg: github.com/neolink/neolink/bench
cpu: Test CPU @ 1.00GHz
BenchmarkRTT/tcp-direct-2         	   71114	     10000 ns/op	       0 B/op	       0 allocs/op
BenchmarkRTT/link-N-ask-2         	   50000	     10500 ns/op	       0 B/op	       0 allocs/op
BenchmarkRTT/link-N-ask1-2        	   40000	     13000 ns/op	      16 B/op	       1 allocs/op
BenchmarkThroughput1MiB/tcp-2     	    4575	    313965 ns/op	3000.00 MB/s	       0 B/op	       0 allocs/op
BenchmarkThroughput1MiB/link-N-2  	    4000	    350000 ns/op	2800.00 MB/s	      10 B/op	       0 allocs/op
BenchmarkParallel64/tcp-64conns-2 	  150135	      8088 ns/op	       446.7 p50-us	      3824 p99-us	    100000 rt/s	       0 B/op	       0 allocs/op
BenchmarkParallel64/link-N-2      	  150135	      8088 ns/op	       400.0 p50-us	      3000 p99-us	     90000 rt/s	       0 B/op	       0 allocs/op
BenchmarkIdleConnMemory-2         	       3	  22790206 ns/op	      2440 B/conn	24400301 B/op	   30000 allocs/op
    harness_test.go:12: some log line: with a colon
--- FAIL: BenchmarkRTT/link-M-ask-2
    link_test.go:99: round trip 0: boom
BenchmarkRTT/tcp-direct-2         	   71114	     12000 ns/op	       0 B/op	       0 allocs/op
BenchmarkRTT/link-N-ask-2         	   50000	     12500 ns/op	       0 B/op	       0 allocs/op
BenchmarkRTT/link-N-ask1-2        	   40000	     13000 ns/op	      16 B/op	       0 allocs/op
BenchmarkRTT/tcp-direct-2         	   71114	     11000 ns/op	       0 B/op	       0 allocs/op
BenchmarkThroughput1MiB/tcp-2     	    4575	    313965 ns/op	3000.00 MB/s	       0 B/op	       0 allocs/op
BenchmarkThroughput1MiB/link-N-2  	    4000	    350000 ns/op	2600.00 MB/s	      10 B/op	       0 allocs/op
BenchmarkOther-2                  	     100	       100 ns/op
PASS
ok  	github.com/neolink/neolink/bench	20.476s
`

func parseSample(t *testing.T) *Results {
	t.Helper()
	res := NewResults()
	if err := res.Parse(strings.NewReader(sample)); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestParse reads names, units, header lines and failures from sample output.
func TestParse(t *testing.T) {
	res := parseSample(t)
	want := []string{
		"RTT/tcp-direct", "RTT/link-N-ask", "RTT/link-N-ask1",
		"Throughput1MiB/tcp", "Throughput1MiB/link-N",
		"Parallel64/tcp-64conns", "Parallel64/link-N", "IdleConnMemory", "Other",
	}
	if strings.Join(res.Order, " ") != strings.Join(want, " ") {
		t.Errorf("order %q, want %q", res.Order, want)
	}
	if res.Procs != 2 {
		t.Errorf("procs %d, want 2", res.Procs)
	}
	if res.Config["cpu"] != "Test CPU @ 1.00GHz" || res.Config["goos"] != "linux" {
		t.Errorf("config %q", res.Config)
	}
	if len(res.Failed) != 1 || res.Failed[0] != "RTT/link-M-ask" {
		t.Errorf("failed %q", res.Failed)
	}
	if got := res.Values("RTT/tcp-direct", "ns/op"); len(got) != 3 || got[0] != 10000 || got[2] != 11000 {
		t.Errorf("tcp-direct ns/op %v", got)
	}
	if got := res.Values("Parallel64/link-N", "rt/s"); len(got) != 1 || got[0] != 90000 {
		t.Errorf("rt/s %v", got)
	}
	if got := res.Values("Parallel64/link-N", "p50-us"); len(got) != 1 || got[0] != 400 {
		t.Errorf("p50 %v", got)
	}
	if got, _ := res.Median("IdleConnMemory", "B/conn"); got != 2440 {
		t.Errorf("B/conn %v", got)
	}
	if res.Runs("RTT/link-N-ask1", "allocs/op") != 2 || res.Runs("nope", "ns/op") != 0 {
		t.Error("runs")
	}
}

// TestParseMultipleInputs merges the runs of several outputs.
func TestParseMultipleInputs(t *testing.T) {
	res := NewResults()
	for _, in := range []string{
		"BenchmarkRTT/tcp-direct-2 10 100 ns/op\n",
		"BenchmarkRTT/tcp-direct-2 10 300 ns/op\nBenchmarkRTT/tcp-direct-2 10 200 ns/op\n",
	} {
		if err := res.Parse(strings.NewReader(in)); err != nil {
			t.Fatal(err)
		}
	}
	if m, _ := res.Median("RTT/tcp-direct", "ns/op"); m != 200 || len(res.Order) != 1 {
		t.Errorf("median %v over %d benchmarks", m, len(res.Order))
	}
}

// TestParseResultRejects ignores lines that are not complete results.
func TestParseResultRejects(t *testing.T) {
	for _, line := range []string{
		"",
		"Benchmark",
		"BenchmarkX-2",
		"BenchmarkX-2 10 100",            // odd field count
		"BenchmarkX-2 ten 100 ns/op",     // iterations not a number
		"BenchmarkX-2 10 fast ns/op",     // value not a number
		"BenchmarkX-2 0 100 ns/op",       // no iterations
		"NotABenchmark 10 100 ns/op",     // wrong prefix
		"BenchmarkX-2 --- FAIL: x y z w", // failure text
	} {
		if name, _, ok := parseResult(line); ok {
			t.Errorf("parseResult(%q) accepted as %q", line, name)
		}
	}
	name, ms, ok := parseResult("BenchmarkA/b-c-8  5  1.5 ns/op  2 x/op")
	if !ok || name != "A/b-c-8" || len(ms) != 2 || ms[0] != (metric{1.5, "ns/op"}) || ms[1] != (metric{2, "x/op"}) {
		t.Errorf("got %q %v %v", name, ms, ok)
	}
}

// TestSplitProcs strips only a numeric GOMAXPROCS suffix.
func TestSplitProcs(t *testing.T) {
	for _, tc := range []struct {
		in    string
		name  string
		procs int
	}{
		{"RTT/tcp-direct-2", "RTT/tcp-direct", 2},
		{"RTT/link-N-ask1-16", "RTT/link-N-ask1", 16},
		{"RTT/link-N-ask1", "RTT/link-N-ask1", 0},
		{"Parallel64/tcp-64conns", "Parallel64/tcp-64conns", 0},
		{"Parallel64/tcp-64conns-2", "Parallel64/tcp-64conns", 2},
		{"IdleConnMemory", "IdleConnMemory", 0},
		{"X-", "X-", 0},
		{"X-+2", "X-+2", 0},
		{"X-0", "X-0", 0},
	} {
		name, procs := splitProcs(tc.in)
		if name != tc.name || procs != tc.procs {
			t.Errorf("splitProcs(%q) = %q, %d; want %q, %d", tc.in, name, procs, tc.name, tc.procs)
		}
	}
}

// TestMedian covers odd, even and empty inputs, and leaves its input unsorted.
func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
		ok   bool
	}{
		{nil, 0, false},
		{[]float64{5}, 5, true},
		{[]float64{3, 1, 2}, 2, true},
		{[]float64{4, 1, 3, 2}, 2.5, true},
		{[]float64{9, 1, 1, 1, 9, 9}, 5, true},
	} {
		in := append([]float64(nil), tc.in...)
		got, ok := median(in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("median(%v) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Errorf("median reordered its input: %v", in)
			}
		}
	}
}

// TestRatios divides medians by the medians of each group's reference.
func TestRatios(t *testing.T) {
	res := parseSample(t)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	// link-N-ask: median(10500, 12500) = 11500 over median(10000, 12000, 11000) = 11000.
	if r, ok := GroupRTT.Ratio(res, "RTT/link-N-ask"); !ok || !near(r, 11500.0/11000) {
		t.Errorf("RTT ratio %v %v", r, ok)
	}
	if r, ok := GroupRTT.Ratio(res, "RTT/tcp-direct"); !ok || r != 1 {
		t.Errorf("base ratio %v %v", r, ok)
	}
	// Throughput: median(2800, 2600) = 2700 over 3000.
	if r, ok := GroupThroughput.Ratio(res, "Throughput1MiB/link-N"); !ok || !near(r, 0.9) {
		t.Errorf("throughput ratio %v %v", r, ok)
	}
	if r, ok := GroupParallel.Ratio(res, "Parallel64/link-N"); !ok || !near(r, 0.9) {
		t.Errorf("parallel ratio %v %v", r, ok)
	}
	// Equal run counts: the median of per-run ratios, not the ratio of
	// medians (20/15 here).
	paired := NewResults()
	_ = paired.Parse(strings.NewReader("BenchmarkRTT/tcp-direct-2 1 10 ns/op\nBenchmarkRTT/x-2 1 10 ns/op\n" +
		"BenchmarkRTT/tcp-direct-2 1 40 ns/op\nBenchmarkRTT/x-2 1 20 ns/op\n" +
		"BenchmarkRTT/tcp-direct-2 1 15 ns/op\nBenchmarkRTT/x-2 1 30 ns/op\n"))
	if r, ok := GroupRTT.Ratio(paired, "RTT/x"); !ok || r != 1 {
		t.Errorf("paired ratio %v %v, want 1", r, ok)
	}
	zero := NewResults()
	_ = zero.Parse(strings.NewReader("BenchmarkRTT/tcp-direct-2 1 0 ns/op\nBenchmarkRTT/x-2 1 10 ns/op\n"))
	if _, ok := GroupRTT.Ratio(zero, "RTT/x"); ok {
		t.Error("ratio to a zero base")
	}
	if _, ok := GroupRTT.Ratio(res, "RTT/missing"); ok {
		t.Error("ratio of a missing benchmark")
	}
	if _, ok := GroupRTT.Ratio(NewResults(), "RTT/link-N-ask"); ok {
		t.Error("ratio without a base")
	}
	if got := GroupRTT.Members(res); len(got) != 3 {
		t.Errorf("RTT members %q", got)
	}
}

// sampleTargets is one run of every benchmark the targets read, with values
// chosen to meet or miss each target.
const sampleTargets = `BenchmarkRTT/tcp-direct-2 100 10000 ns/op 0 B/op 0 allocs/op
BenchmarkRTT/tcp-serverecv-2 100 15000 ns/op 0 B/op 0 allocs/op
BenchmarkRTT/tcp-goperreq-2 100 15500 ns/op 24 B/op 1 allocs/op
BenchmarkRTT/link-N-ask-2 100 10400 ns/op 0 B/op 0 allocs/op
BenchmarkRTT/link-M-ask-2 100 10600 ns/op 0 B/op 0 allocs/op
BenchmarkRTT/link-N-ask1-2 100 12000 ns/op 0 B/op 0 allocs/op
BenchmarkRTT/link-N-ask-acceptloop-2 100 11000 ns/op 0 B/op 0 allocs/op
BenchmarkRTT/link-M-ask-acceptloop-2 100 16000 ns/op 0 B/op 0 allocs/op
BenchmarkRTT/link-N-ask1-go-2 100 15600 ns/op 48 B/op 1 allocs/op
BenchmarkRTT/link-M-ask1-go-2 100 16500 ns/op 48 B/op 1 allocs/op
BenchmarkRTT/link-N-connperreq-2 100 15000 ns/op 448 B/op 6 allocs/op
BenchmarkRTT/link-M-connperreq-2 100 20000 ns/op 448 B/op 6 allocs/op
BenchmarkRTT/tcp-direct-4KiB-2 100 12000 ns/op 0 B/op 0 allocs/op
BenchmarkRTT/link-N-ask-4KiB-2 100 13000 ns/op 0 B/op 0 allocs/op
BenchmarkRTT/link-M-ask-4KiB-2 100 14000 ns/op 0 B/op 0 allocs/op
BenchmarkThroughput1MiB/tcp-2 100 250000 ns/op 4000 MB/s 0 B/op 0 allocs/op
BenchmarkThroughput1MiB/link-N-2 100 270000 ns/op 3700 MB/s 0 B/op 0 allocs/op
BenchmarkThroughput1MiB/link-M-2 100 300000 ns/op 3300 MB/s 0 B/op 0 allocs/op
BenchmarkThroughput64KiB/tcp-2 100 30000 ns/op 2000 MB/s 0 B/op 0 allocs/op
BenchmarkThroughput64KiB/link-N-2 100 35000 ns/op 1700 MB/s 0 B/op 0 allocs/op
BenchmarkThroughput64KiB/link-M-2 100 37000 ns/op 1600 MB/s 30 B/op 1 allocs/op
BenchmarkParallel64/tcp-64conns-2 100 5000 ns/op 100 p50-us 900 p99-us 100000 rt/s 0 B/op 0 allocs/op
BenchmarkParallel64/link-N-2 100 4000 ns/op 90 p50-us 800 p99-us 135000 rt/s 0 B/op 0 allocs/op
BenchmarkParallel64_4KiB/tcp-64conns-2 100 5000 ns/op 150 p50-us 700 p99-us 100000 rt/s 0 B/op 0 allocs/op
BenchmarkParallel64_4KiB/link-N-2 100 4500 ns/op 140 p50-us 650 p99-us 120000 rt/s 25 B/op 0 allocs/op
BenchmarkIdleLinks/tcp-2 1 950000000 ns/op 296.6 B/link 296.6 dialer-B/link 0 dialer-goroutines/link 0 goroutines/link 2966184 B/op 60016 allocs/op
BenchmarkIdleLinks/link-N-2 1 1635047794 ns/op 7000 B/link 9000 dialer-B/link 0 dialer-goroutines/link 0.0001 goroutines/link 250074896 B/op 420047 allocs/op
`

// TestTargets evaluates every target to met, not met and no data.
func TestTargets(t *testing.T) {
	res := NewResults()
	if err := res.Parse(strings.NewReader(sampleTargets)); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		desc     string
		measured string
		st       Status
	}{
		{"RTT link-N-ask ≤ 1.05× tcp-direct (ns/op)", "1.040×", Met},
		{"RTT link-M-ask ≤ 1.05× tcp-direct (ns/op)", "1.060×", NotMet},
		{"RTT link-N-ask1 ≤ 1.25× tcp-direct (ns/op)", "1.200×", Met},
		{"RTT link-N-ask-acceptloop ≤ 1.15× tcp-direct (ns/op)", "1.100×", Met},
		{"RTT link-M-ask-acceptloop ≤ 1.15× tcp-direct (ns/op)", "1.600×", NotMet},
		{"RTT link-N-ask1-go ≤ 1.05× tcp-serverecv (ns/op)", "1.040×", Met},
		{"RTT link-M-ask1-go ≤ 1.05× tcp-serverecv (ns/op)", "1.100×", NotMet},
		{"RTT link-N-connperreq ≤ 1.05× tcp-serverecv (ns/op)", "1.000×", Met},
		{"RTT link-M-connperreq ≤ 1.05× tcp-serverecv (ns/op)", "1.333×", NotMet},
		{"RTT link-N-ask-4KiB ≤ 1.10× tcp-direct-4KiB (ns/op)", "1.083×", Met},
		{"RTT link-M-ask-4KiB ≤ 1.10× tcp-direct-4KiB (ns/op)", "1.167×", NotMet},
		{"0 allocs/op for every link-* variant of RTT, Throughput and Parallel64 but ask1-go and connperreq (every run)",
			"Throughput64KiB/link-M 1", NotMet},
		{"RTT link-*-ask1-go and link-*-connperreq allocs/op ≤ tcp-goperreq",
			"link-N-ask1-go 1, link-M-ask1-go 1, link-N-connperreq 6, link-M-connperreq 6 (tcp-goperreq 1)", NotMet},
		{"Throughput1MiB link-N ≥ 0.90× tcp (MB/s)", "0.925×", Met},
		{"Throughput1MiB link-M ≥ 0.85× tcp (MB/s)", "0.825×", NotMet},
		{"Throughput64KiB link-N ≥ 0.85× tcp (MB/s)", "0.850×", Met},
		{"Throughput64KiB link-M ≥ 0.85× tcp (MB/s)", "0.800×", NotMet},
		{"Parallel64 link-N ≥ 1.30× tcp-64conns (rt/s)", "1.350×", Met},
		{"Parallel64_4KiB link-N ≥ 1.30× tcp-64conns (rt/s)", "1.200×", NotMet},
		{"IdleLinks link-N: heap ≤ 8.00 KiB per idle link, each side (B/link)", "6.84 KiB accepting, 8.79 KiB dialing", NotMet},
		{"IdleLinks link-N: goroutines ≤ 0.01 per idle link, each side (goroutines/link)", "0.0001 accepting, 0 dialing", Met},
	}
	if len(Targets) != len(want) {
		t.Fatalf("%d targets, want %d", len(Targets), len(want))
	}
	for i, tg := range Targets {
		m, st := tg.Eval(res)
		if tg.Desc != want[i].desc || m != want[i].measured || st != want[i].st {
			t.Errorf("target %d: %q: %q, %s; want %q: %q, %s", i, tg.Desc, m, st, want[i].desc, want[i].measured, want[i].st)
		}
	}
	for _, tg := range Targets {
		if m, st := tg.Eval(NewResults()); st != NoData || m != "—" {
			t.Errorf("target %q on no data: %s %q", tg.Desc, st, m)
		}
	}

	// The zero-alloc target: met, and every run counts, not the median.
	zero := Targets[11]
	all0 := NewResults()
	_ = all0.Parse(strings.NewReader("BenchmarkRTT/link-N-ask-2 1 1 ns/op 0 allocs/op\nBenchmarkRTT/link-M-ask1-2 1 1 ns/op 0 allocs/op\n" +
		"BenchmarkRTT/link-N-ask1-go-2 1 1 ns/op 1 allocs/op\nBenchmarkParallel64/link-N-2 1 1 ns/op 0 allocs/op\nBenchmarkRTT/tcp-direct-2 1 1 ns/op 3 allocs/op\n"))
	if m, st := zero.Eval(all0); st != Met || m != "0 in all 3 variants" {
		t.Errorf("zero allocs: %s %q", st, m)
	}
	_ = all0.Parse(strings.NewReader("BenchmarkRTT/link-N-ask-2 1 1 ns/op 0 allocs/op\nBenchmarkRTT/link-N-ask-2 1 1 ns/op 2 allocs/op\n"))
	if m, st := zero.Eval(all0); st != NotMet || m != "RTT/link-N-ask 2" {
		t.Errorf("zero allocs, one bad run: %s %q", st, m)
	}

	// The hand-off target is met when no variant allocates more than TCP.
	handOff := Targets[12]
	same := NewResults()
	_ = same.Parse(strings.NewReader("BenchmarkRTT/tcp-goperreq-2 1 1 ns/op 1 allocs/op\nBenchmarkRTT/link-N-ask1-go-2 1 1 ns/op 1 allocs/op\nBenchmarkRTT/link-N-connperreq-2 1 1 ns/op 0 allocs/op\n"))
	if m, st := handOff.Eval(same); st != Met || m != "link-N-ask1-go 1, link-N-connperreq 0 (tcp-goperreq 1)" {
		t.Errorf("hand-off allocs: %s %q", st, m)
	}
}

// TestRTTReference checks which TCP variant each RTT variant is held to.
func TestRTTReference(t *testing.T) {
	for v, want := range map[string]string{
		"link-N-ask":            "tcp-direct",
		"link-M-ask1":           "tcp-direct",
		"link-N-ask-acceptloop": "tcp-direct",
		"link-N-ask1-go":        "tcp-serverecv",
		"link-M-connperreq":     "tcp-serverecv",
		"link-N-ask-4KiB":       "tcp-direct-4KiB",
		"tcp-direct-4KiB":       "tcp-direct",
		"yamux-stream":          "tcp-direct",
	} {
		if got := RTTReference(v); got != want {
			t.Errorf("RTTReference(%q) = %q, want %q", v, got, want)
		}
	}
}

// TestHandWritten extracts the hand-written section with its markers.
func TestHandWritten(t *testing.T) {
	if got := HandWritten("# report\n" + DefaultHandWritten + "\n## after\n"); got != DefaultHandWritten {
		t.Errorf("got %q", got)
	}
	custom := handBegin + "\n## Python\n\nsee elsewhere\n" + handEnd
	if got := HandWritten("x\n" + custom + "\ny " + handEnd); got != custom {
		t.Errorf("got %q, want %q", got, custom)
	}
	for _, in := range []string{"", "no markers", handBegin + " unterminated", handEnd + " then " + handBegin} {
		if got := HandWritten(in); got != "" {
			t.Errorf("HandWritten(%q) = %q", in, got)
		}
	}
	if !strings.Contains(DefaultHandWritten, "(python.md)") {
		t.Error("the default section does not point to python.md")
	}
}

// TestStatusString checks the status words.
func TestStatusString(t *testing.T) {
	if Met.String() != "met" || NotMet.String() != "not met" || NoData.String() != "no data" {
		t.Error(Met, NotMet, NoData)
	}
}

// TestFormat checks the number formats of the report.
func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{formatNs(950), "950 ns"},
		{formatNs(14262), "14.3 µs"},
		{formatNs(1497), "1.50 µs"},
		{formatNs(1.25e6), "1.25 ms"},
		{formatNs(2.5e9), "2.50 s"},
		{formatNs(0), "0 ns"},
		{formatRate(3339.79), "3340"},
		{formatRate(123647), "124 k"},
		{formatRate(2.5e6), "2.50 M"},
		{num(0), "0"},
		{num(5762), "5762"},
		{num(2.5), "2.50"},
		{sig3(0.1234), "0.123"},
		{tickLabel(2.5), "2.5"},
		{formatBytes(296.6), "297 B"},
		{formatBytes(23473), "22.9 KiB"},
		{formatBytes(1.5 * (1 << 20)), "1.50 MiB"},
		{tickLabel(20), "20"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestNiceStep checks the chart's axis steps.
func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{0, 1}, {-1, 1}, {math.NaN(), 1}, {0.3, 0.5}, {1, 1}, {1.2, 2}, {2.2, 2.5}, {3, 5}, {14.3, 20}, {60, 100},
	} {
		if got := niceStep(tc.in); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("niceStep(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestParseCPUInfo reads the first model name of /proc/cpuinfo text.
func TestParseCPUInfo(t *testing.T) {
	text := "processor\t: 0\nvendor_id\t: X\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n"
	if got := parseCPUInfo(text); got != "AMD EPYC 7B13" {
		t.Errorf("got %q", got)
	}
	if got := parseCPUInfo("nothing here\n"); got != "" {
		t.Errorf("got %q", got)
	}
}

// TestWriteMarkdown checks the report's rows, targets and optional sections.
func TestWriteMarkdown(t *testing.T) {
	res := parseSample(t)
	var b bytes.Buffer
	opt := Options{
		Machine:       Machine{CPU: "Test CPU", Cores: 2, Procs: 2, Go: "go1.26 linux/amd64", Date: "2026-01-02"},
		SVG:           "bench-rtt.svg",
		BenchstatNote: "benchstat is not installed",
		Inputs:        []string{"full.txt"},
	}
	if err := WriteMarkdown(&b, res, opt); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| CPU | Test CPU |",
		"| Cores | 2 (GOMAXPROCS 2) |",
		"| Date | 2026-01-02 |",
		"| Runs per benchmark | 1–3 |",
		"**Failed benchmarks:** `RTT/link-M-ask`",
		"| RTT link-N-ask ≤ 1.05× tcp-direct (ns/op) | 1.045× | ✅ met |",
		"| Parallel64 link-N ≥ 1.30× tcp-64conns (rt/s) | 0.900× | ❌ not met |",
		"| Throughput64KiB link-N ≥ 0.85× tcp (MB/s) | — | — no data |",
		"![Median round trip per variant](bench-rtt.svg)",
		"| `tcp-direct` | 11.0 µs | 1.00× |  | 10.0 µs–12.0 µs | 0 | 0 | 3 |",
		"| `link-N-ask1` | 13.0 µs | 1.18× |  | 13.0 µs–13.0 µs | 16 | 0.5 | 2 |",
		"| `link-N` | 2700 | 0.90× | 350 µs | 10 | 0 | 2 |",
		"| `link-N` | 90.0 k | 0.90× | 400 | 3000 | 0 | 0 | 1 |",
		"| 2440 | 22.8 ms | 30000 | 1 |",
		"| Other | 100 ns/op | 1 |",
		"benchstat is not installed",
		DefaultHandWritten,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}

	b.Reset()
	opt.Benchstat = "name  time/op\nx  1ns\n"
	if err := WriteMarkdown(&b, res, opt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "```text\nname  time/op\nx  1ns\n```") {
		t.Error("benchstat output not embedded")
	}

	// Brief, RTT only: no notes, no benchstat, no empty sections.
	b.Reset()
	only := NewResults()
	_ = only.Parse(strings.NewReader("BenchmarkRTT/tcp-direct-2 10 100 ns/op\n"))
	if err := WriteMarkdown(&b, only, Options{Brief: true, Benchstat: "x"}); err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"## Variants", "## benchstat", "## Throughput", "## 64 concurrent", "## Idle", "## Other", "## Python", "![", "Failed"} {
		if strings.Contains(b.String(), absent) {
			t.Errorf("brief RTT-only report has %q", absent)
		}
	}
	if !strings.Contains(b.String(), "| `tcp-direct` | 100 ns | 1.00× |") {
		t.Errorf("brief report lacks the RTT row:\n%s", b.String())
	}
}

// TestWriteMarkdownSections checks the sections of the newer benchmarks:
// reference ratios in the RTT table, 64 KiB throughput, 4 KiB parallel and
// idle links.
func TestWriteMarkdownSections(t *testing.T) {
	res := NewResults()
	if err := res.Parse(strings.NewReader(sampleTargets)); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, res, Options{HandWritten: handBegin + "\nmine\n" + handEnd}); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| `link-N-ask` | 10.4 µs | 1.04× |  | 10.4 µs–10.4 µs | 0 | 0 | 1 |",
		"| `link-M-ask1-go` | 16.5 µs | 1.65× | 1.10× tcp-serverecv | 16.5 µs–16.5 µs | 48 | 1 | 1 |",
		"| `link-N-ask-4KiB` | 13.0 µs | 1.30× | 1.08× tcp-direct-4KiB |",
		"| `tcp-direct-4KiB` | 12.0 µs | 1.20× |  |",
		"## Throughput, 64 KiB messages (BenchmarkThroughput64KiB)",
		"| `link-M` | 1600 | 0.80× | 37.0 µs | 30 | 1 | 1 |",
		"## 64 concurrent streams, 4 KiB answers (BenchmarkParallel64_4KiB)",
		"| `link-N` | 120 k | 1.20× | 140 | 650 | 25 | 0 | 1 |",
		"## Idle links (BenchmarkIdleLinks)",
		"| `link-N` | 6.84 KiB | 8.79 KiB | 0.0001 | 0 | 1.64 s | 1 |",
		"| `tcp` | 297 B | 297 B | 0 | 0 | 950 ms | 1 |",
		handBegin + "\nmine\n" + handEnd,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, absent := range []string{"## Other", DefaultHandWritten} {
		if strings.Contains(md, absent) {
			t.Errorf("report has %q", absent)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// TestWriteRTTChart checks that the chart is well-formed SVG with one bar per variant.
func TestWriteRTTChart(t *testing.T) {
	res := parseSample(t)
	var b bytes.Buffer
	if err := WriteRTTChart(&b, res, "sub <&> title"); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML with one bar per RTT variant plus the legend swatches.
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	rects, texts := 0, []string{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("invalid SVG: %v\n%s", err, b.String())
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
		if cd, ok := tok.(xml.CharData); ok {
			texts = append(texts, string(cd))
		}
	}
	if want := 1 + 3 + 3; rects != want { // background, legend, bars
		t.Errorf("%d rects, want %d", rects, want)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"sub <&> title", "link-N-ask1", "13.0 µs · 1.18×", "tcp-direct"} {
		if !strings.Contains(all, want) {
			t.Errorf("chart lacks %q", want)
		}
	}

	// No RTT data: still a valid, empty chart.
	b.Reset()
	if err := WriteRTTChart(&b, NewResults(), ""); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b.Bytes(), new(struct{})); err != nil {
		t.Errorf("empty chart: %v", err)
	}
}

// TestRun runs the command on files and on standard input.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "full.txt")
	if err := os.WriteFile(in, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	docs := filepath.Join(dir, "docs")
	if err := os.Mkdir(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	md, svg := filepath.Join(docs, "benchmarks.md"), filepath.Join(docs, "bench-rtt.svg")
	var out bytes.Buffer
	if err := run([]string{"-o", md, "-svg", svg, "-benchstat", "off", "-date", "2026-01-02", in}, nil, &out); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(bench-rtt.svg)", "(`../full.txt`)", "-benchstat off"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if _, err := os.Stat(svg); err != nil {
		t.Error(err)
	}

	// A regenerated report keeps its hand-written section.
	edited := strings.Replace(string(text), "measured by hand", "measured by hand on Tuesdays", 1)
	if edited == string(text) {
		t.Fatal("the new report has no default hand-written section")
	}
	if err := os.WriteFile(md, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-o", md, "-svg", "", "-benchstat", "off", in}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if text, _ := os.ReadFile(md); !strings.Contains(string(text), "measured by hand on Tuesdays") {
		t.Error("the hand-written section was not kept")
	}

	// A benchstat binary given by path runs on the input files; a failing
	// one leaves a note.
	fake := filepath.Join(dir, "fakestat")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho fakestat \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-o", md, "-svg", "", "-benchstat", fake, in}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if text, _ := os.ReadFile(md); !strings.Contains(string(text), "```text\nfakestat "+in+"\n```") {
		t.Errorf("benchstat output missing:\n%s", text)
	}
	if err := run([]string{"-o", md, "-svg", "", "-benchstat", filepath.Join(dir, "missing"), in}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if text, _ := os.ReadFile(md); !strings.Contains(string(text), "benchstat failed") {
		t.Error("no note for a failing benchstat")
	}

	// Standard input to standard output, no chart.
	out.Reset()
	if err := run([]string{"-o", "-", "-svg", ""}, strings.NewReader(sample), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "# neolink benchmarks") || strings.Contains(out.String(), "![") {
		t.Error("stdout report wrong")
	}

	if err := run([]string{"-o", "-"}, strings.NewReader("PASS\n"), &out); err == nil {
		t.Error("no error for input without results")
	}
}
