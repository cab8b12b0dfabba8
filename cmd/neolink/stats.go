package main

import (
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"
	"time"
)

// Latency statistics for ping: a log-linear histogram that keeps memory
// constant however long the run, exact min, max, mean and stddev, and
// percentiles within 1/histSub of the true value.

// histSub is the number of buckets per power of two: a value is known to
// within 1/histSub (1.6%) of itself. Values under 2*histSub ns are exact.
const histSub = 64

// latHist records durations. Its zero value is empty and ready to use; it
// is not safe for concurrent use (each ping worker has its own, merged at
// the end).
type latHist struct {
	counts     []uint64
	n          uint64
	min, max   time.Duration
	sum, sumSq float64 // of microseconds
}

// bucketOf returns the bucket index of v nanoseconds.
func bucketOf(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	s := bits.Len64(v) - 7 // v>>s is in [histSub, 2*histSub)
	return 2*histSub + (s-1)*histSub + int(v>>s) - histSub
}

// bucketBounds returns the values [lo, hi) that bucket i holds.
func bucketBounds(i int) (lo, hi uint64) {
	if i < 2*histSub {
		return uint64(i), uint64(i) + 1
	}
	k := i - 2*histSub
	s := uint(k/histSub + 1)
	m := uint64(k%histSub + histSub)
	return m << s, (m + 1) << s
}

// record adds one duration.
func (h *latHist) record(d time.Duration) {
	d = max(d, 0)
	i := bucketOf(uint64(d))
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.n++
	us := float64(d) / float64(time.Microsecond)
	h.sum += us
	h.sumSq += us * us
}

// merge adds o's values to h.
func (h *latHist) merge(o *latHist) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
	h.sumSq += o.sumSq
}

// mean returns the mean in microseconds, 0 if empty.
func (h *latHist) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// stddev returns the population standard deviation in microseconds.
func (h *latHist) stddev() float64 {
	if h.n < 2 {
		return 0
	}
	m := h.mean()
	return math.Sqrt(max(h.sumSq/float64(h.n)-m*m, 0))
}

// percentile returns the nearest-rank q-quantile (0 < q <= 1): the middle
// of the bucket holding it, clamped to [min, max]. 0 if empty.
func (h *latHist) percentile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := max(1, uint64(math.Ceil(q*float64(h.n))))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketBounds(i)
			return min(max(time.Duration(lo+(hi-lo)/2), h.min), h.max)
		}
	}
	return h.max
}

// micros converts d to microseconds rounded to 0.1.
func micros(d time.Duration) float64 {
	return round(float64(d)/float64(time.Microsecond), 10)
}

// bucket is one histogram bar: the values in [lo, hi).
type bucket struct {
	lo, hi time.Duration
	n      uint64
}

// bars splits the recorded values into at most n bars whose bounds grow
// geometrically from the smallest value to the largest; the last also
// holds the largest. A fine bucket goes to the bar holding its middle.
func (h *latHist) bars(n int) []bucket {
	if h.n == 0 || n < 1 {
		return nil
	}
	lo, hi := max(h.min, 1), max(h.max, 1)
	if hi <= lo {
		return []bucket{{lo: lo, hi: hi, n: h.n}}
	}
	ratio := math.Pow(float64(hi)/float64(lo), 1/float64(n))
	bs := make([]bucket, n)
	edge := float64(lo)
	for i := range bs {
		next := edge * ratio
		bs[i] = bucket{lo: time.Duration(edge), hi: time.Duration(next)}
		edge = next
	}
	bs[n-1].hi = hi
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		blo, bhi := bucketBounds(i)
		mid := min(max(float64(blo+(bhi-blo)/2), float64(lo)), float64(hi))
		j := min(int(math.Log(mid/float64(lo))/math.Log(ratio)), n-1)
		bs[max(j, 0)].n += c
	}
	return bs
}

// printHistogram draws buckets as rows of '#', the longest width wide.
func printHistogram(w io.Writer, bs []bucket, width int) {
	var most uint64
	for _, b := range bs {
		most = max(most, b.n)
	}
	for _, b := range bs {
		bar := 0
		if most > 0 {
			bar = int((b.n*uint64(width) + most - 1) / most)
		}
		fmt.Fprintf(w, "  %9.1f - %9.1f µs |%-*s %d\n", micros(b.lo), micros(b.hi), width, strings.Repeat("#", bar), b.n)
	}
}

// fmtDuration formats d for people: "850µs", "12.35ms", "1.234s", "2m3s".
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
