package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Results is what one or more `go test -bench` outputs hold: every run of
// every benchmark, grouped by name.
type Results struct {
	// Config holds the "key: value" header lines (goos, goarch, pkg, cpu),
	// first value seen.
	Config map[string]string
	// Order lists benchmark names in order of first appearance.
	Order []string
	// Benches maps a name to its runs.
	Benches map[string]*Bench
	// Procs is the GOMAXPROCS suffix of the benchmark names (1 if none).
	Procs int
	// Failed lists the benchmarks reported as "--- FAIL".
	Failed []string
}

// Bench is the runs of one benchmark. Its name has no "Benchmark" prefix
// and no GOMAXPROCS suffix, e.g. "RTT/tcp-direct".
type Bench struct {
	// Name is the benchmark's name, e.g. "RTT/tcp-direct".
	Name string
	// Metrics maps a unit ("ns/op", "MB/s", "allocs/op", "rt/s", ...) to its
	// value in each run that reported it, in input order.
	Metrics map[string][]float64
}

// NewResults returns empty Results.
func NewResults() *Results {
	return &Results{Config: map[string]string{}, Benches: map[string]*Bench{}, Procs: 1}
}

// Parse reads go test -bench output from r and adds it to res. Lines that
// are not benchmark results, header lines or failures are ignored.
func (res *Results) Parse(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		res.parseLine(sc.Text())
	}
	return sc.Err()
}

func (res *Results) parseLine(line string) {
	if name, ok := strings.CutPrefix(strings.TrimSpace(line), "--- FAIL: Benchmark"); ok {
		name, _, _ = strings.Cut(name, " ")
		name, _ = splitProcs(name)
		if !slices.Contains(res.Failed, name) {
			res.Failed = append(res.Failed, name)
		}
		return
	}
	if key, val, ok := strings.Cut(line, ": "); ok && isConfigKey(key) {
		if _, seen := res.Config[key]; !seen {
			res.Config[key] = strings.TrimSpace(val)
		}
		return
	}
	name, metrics, ok := parseResult(line)
	if !ok {
		return
	}
	name, procs := splitProcs(name)
	if procs > 0 {
		res.Procs = procs
	}
	b := res.Benches[name]
	if b == nil {
		b = &Bench{Name: name, Metrics: map[string][]float64{}}
		res.Benches[name] = b
		res.Order = append(res.Order, name)
	}
	for _, m := range metrics {
		b.Metrics[m.unit] = append(b.Metrics[m.unit], m.value)
	}
}

// isConfigKey reports whether key looks like a go test header key: a
// lower-case word such as goos, goarch, pkg or cpu.
func isConfigKey(key string) bool {
	if key == "" {
		return false
	}
	for _, c := range key {
		if (c < 'a' || c > 'z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

type metric struct {
	value float64
	unit  string
}

// parseResult parses "BenchmarkName-P  iters  v1 unit1  v2 unit2 ...".
// The name keeps its GOMAXPROCS suffix.
func parseResult(line string) (name string, metrics []metric, ok bool) {
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 || !strings.HasPrefix(f[0], "Benchmark") || len(f[0]) == len("Benchmark") {
		return "", nil, false
	}
	iters, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || iters <= 0 {
		return "", nil, false
	}
	for i := 2; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return "", nil, false
		}
		metrics = append(metrics, metric{v, f[i+1]})
	}
	return strings.TrimPrefix(f[0], "Benchmark"), metrics, true
}

// splitProcs removes a "-N" GOMAXPROCS suffix: "RTT/tcp-direct-2" →
// ("RTT/tcp-direct", 2). A name without one is returned with 0.
func splitProcs(name string) (string, int) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || i == len(name)-1 {
		return name, 0
	}
	digits := name[i+1:]
	if strings.Trim(digits, "0123456789") != "" {
		return name, 0
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n <= 0 {
		return name, 0
	}
	return name[:i], n
}

// Values returns the values of unit reported by benchmark name.
func (res *Results) Values(name, unit string) []float64 {
	if b := res.Benches[name]; b != nil {
		return b.Metrics[unit]
	}
	return nil
}

// Median returns the median of unit over the runs of benchmark name.
func (res *Results) Median(name, unit string) (float64, bool) {
	return median(res.Values(name, unit))
}

// Runs returns how many runs of benchmark name reported unit.
func (res *Results) Runs(name, unit string) int { return len(res.Values(name, unit)) }

// median returns the median of vs (the mean of the middle two for an even
// count); ok is false for no values.
func median(vs []float64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// String describes res briefly (for logging).
func (res *Results) String() string {
	return fmt.Sprintf("%d benchmarks, %d failed", len(res.Order), len(res.Failed))
}
