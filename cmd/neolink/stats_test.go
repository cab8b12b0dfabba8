package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPercentile checks nearest-rank percentiles.
func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Microsecond}, {0.9, 90 * time.Microsecond}, {0.99, 99 * time.Microsecond}, {1, 100 * time.Microsecond}} {
		if got := percentile(ds, tc.q); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

// TestHistogram checks that buckets cover every value once.
func TestHistogram(t *testing.T) {
	var ds []time.Duration
	for i := range 1000 {
		ds = append(ds, time.Duration(10_000+i*i)*time.Nanosecond)
	}
	slices.Sort(ds)
	bs := histogram(ds, 10)
	if len(bs) != 10 {
		t.Fatalf("%d buckets, want 10", len(bs))
	}
	total := 0
	for i, b := range bs {
		total += b.n
		if b.hi <= b.lo || (i > 0 && b.lo < bs[i-1].lo) {
			t.Errorf("bucket %d: [%v, %v)", i, b.lo, b.hi)
		}
	}
	if total != len(ds) {
		t.Errorf("buckets hold %d values, want %d", total, len(ds))
	}
	if bs := histogram([]time.Duration{5, 5, 5}, 10); len(bs) != 1 || bs[0].n != 3 {
		t.Errorf("equal values: %+v", bs)
	}
	var sb strings.Builder
	printHistogram(&sb, bs, 40)
	if !strings.Contains(sb.String(), "#") {
		t.Errorf("no bars: %q", sb.String())
	}
}
