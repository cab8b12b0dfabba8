package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Latency statistics for ping: percentiles and a log-scale histogram.

// percentile returns the nearest-rank q-quantile (0 < q <= 1) of sorted
// values, or 0 if there are none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := max(1, int(math.Ceil(q*float64(len(sorted)))))
	return sorted[min(rank, len(sorted))-1]
}

// micros converts d to microseconds rounded to 0.1.
func micros(d time.Duration) float64 {
	return round(float64(d)/float64(time.Microsecond), 10)
}

// bucket is one histogram bar: the values in [lo, hi).
type bucket struct {
	lo, hi time.Duration
	n      int
}

// histogram splits sorted values into at most n buckets whose bounds grow
// geometrically from the smallest value to the largest. The last bucket
// also holds the largest value.
func histogram(sorted []time.Duration, n int) []bucket {
	if len(sorted) == 0 || n < 1 {
		return nil
	}
	lo, hi := max(sorted[0], 1), max(sorted[len(sorted)-1], 1)
	if hi <= lo {
		return []bucket{{lo: lo, hi: hi, n: len(sorted)}}
	}
	ratio := math.Pow(float64(hi)/float64(lo), 1/float64(n))
	bs := make([]bucket, 0, n)
	edge := float64(lo)
	for i := range n {
		next := edge * ratio
		b := bucket{lo: time.Duration(edge), hi: time.Duration(next)}
		if i == n-1 {
			b.hi = hi
		}
		bs = append(bs, b)
		edge = next
	}
	for i := range bs {
		if i < n-1 {
			j, _ := slices.BinarySearch(sorted, bs[i].hi)
			bs[i].n = j
		} else {
			bs[i].n = len(sorted)
		}
	}
	for i := len(bs) - 1; i > 0; i-- {
		bs[i].n -= bs[i-1].n
	}
	return bs
}

// printHistogram draws buckets as rows of '#', the longest width wide.
func printHistogram(w io.Writer, bs []bucket, width int) {
	most := 0
	for _, b := range bs {
		most = max(most, b.n)
	}
	for _, b := range bs {
		bar := 0
		if most > 0 {
			bar = (b.n*width + most - 1) / most
		}
		fmt.Fprintf(w, "  %9.1f - %9.1f µs |%-*s %d\n", micros(b.lo), micros(b.hi), width, strings.Repeat("#", bar), b.n)
	}
}
